"""HTTP API: thin routers over services. Auth and visibility are applied in ``deps``."""
