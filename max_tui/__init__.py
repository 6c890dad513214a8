"""The agent console (Textual): ``max tui``."""
