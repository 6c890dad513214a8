"""The ``max`` command line: administration over the REST API, plus the server itself."""
