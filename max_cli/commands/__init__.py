"""One module per noun: ``max <noun> <verb>``."""
