"""What shows while the console checks the server and the token (the first paint)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Center, Middle
from textual.screen import Screen
from textual.widgets import Static


class StartingScreen(Screen[None]):
    def __init__(self, server: str) -> None:
        super().__init__()
        self.server = server

    def compose(self) -> ComposeResult:
        with Middle(), Center():
            yield Static(f"MAX · connecting to {self.server}…", id="starting", markup=False)
