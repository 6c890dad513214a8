"""One line at the top: who is signed in where, unread notifications (Ctrl+N lists them), and the
live connection's state (discreet)."""

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
        yield Static("", id="unread", markup=False)
        yield Static(LIVE_LABELS["connecting"], id="live-state", classes="-connecting", markup=False)

    def set_unread(self, count: int) -> None:
        """``✉ 3 unread`` (hidden at zero)."""
        label = self.query_one("#unread", Static)
        label.update(f"✉ {count} unread" if count else "")
        label.display = count > 0
        label.tooltip = "Ctrl+N: notifications" if count else None

    def set_live_state(self, state: str, detail: str = "") -> None:
        self.live_state = state
        label = self.query_one("#live-state", Static)
        label.update(LIVE_LABELS.get(state, state))
        label.tooltip = detail or None
        label.set_classes(f"-{state}")
