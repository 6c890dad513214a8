"""MAX server: webhooks in, conversations routed, SLAs watched, events out."""

__version__ = "0.1.0"
