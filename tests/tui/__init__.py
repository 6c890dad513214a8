"""The agent console against a real server (SQLite, the worker, the Graph API sandbox)."""
