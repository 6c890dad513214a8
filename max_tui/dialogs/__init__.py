"""Modal dialogs that ``dismiss`` with the value chosen (or None when cancelled)."""
