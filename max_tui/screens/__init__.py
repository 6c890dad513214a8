"""Screens of the console: starting, connection problems, and the main screen."""
