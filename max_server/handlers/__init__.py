"""Job handlers and ingest hooks, one module per feature. Every module here is imported when
background work starts (``jobs.registry.load_builtin_handlers``), which registers its job kinds,
periodic tasks and hooks."""
