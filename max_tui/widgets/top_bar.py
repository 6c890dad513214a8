"""One line at the top: who is signed in where, and the live connection's state (discreet)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

LIVE_LABELS = {
    "connecting": "◌ connecting",
    "live": "● live",
    "reconnecting": "◌ reconnecting…",
    "refused": "✗ signed out",
}


class TopBar(Horizontal):
    def __init__(self, who: str, server: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.who = who
        self.server = server
        self.live_state = "connecting"

    def compose(self) -> ComposeResult:
        yield Static("MAX", id="brand", markup=False)
        yield Static(f"{self.who} · {self.server}", id="who", markup=False)
        yield Static(LIVE_LABELS["connecting"], id="live-state", classes="-connecting", markup=False)

    def set_live_state(self, state: str, detail: str = "") -> None:
        self.live_state = state
        label = self.query_one("#live-state", Static)
        label.update(LIVE_LABELS.get(state, state))
        label.tooltip = detail or None
        label.set_classes(f"-{state}")
