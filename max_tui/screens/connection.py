"""A clear screen for an unreachable server or a refused token, with retry."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center, Horizontal, Middle, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Label, Static

from max_server.client import ApiError


def explain(error: ApiError, server: str) -> tuple[str, str]:
    """A title and what to do about it."""
    if error.status == 0:
        return (
            "Cannot reach the MAX server",
            f"Nothing answered at {server}.\nCheck the address, your network, and that the server "
            "runs (max server run). The console retries when you press r.",
        )
    if error.status in (401, 403):
        return (
            "The server refused your token",
            f"{server} did not accept the token ({error.message}).\nIt may have been revoked or "
            "mistyped. Sign in again with: max login --url URL --token max_…",
        )
    return (
        "The server answered with an error",
        f"{server} answered HTTP {error.status}: {error.message}.\nPress r to try again.",
    )


class ConnectionProblemScreen(Screen[str]):
    """Dismisses with ``"retry"``; quitting is the app's ctrl+q."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "retry", "Retry", id="connection.retry"),
        Binding("q", "app.quit", "Quit", id="connection.quit"),
    ]

    AUTO_FOCUS = "#retry"

    def __init__(self, server: str, error: ApiError) -> None:
        super().__init__()
        self.server = server
        self.error = error

    def compose(self) -> ComposeResult:
        title, body = explain(self.error, self.server)
        with Middle(), Center(), Vertical(id="problem"):
            yield Label(title, id="problem-title", markup=False)
            yield Static(body, id="problem-body", markup=False)
            with Horizontal(id="problem-buttons"):
                yield Button("Retry (r)", id="retry", variant="primary")
                yield Button("Quit (q)", id="quit")
        yield Footer()

    def action_retry(self) -> None:
        self.dismiss("retry")

    @on(Button.Pressed, "#retry")
    def _retry(self) -> None:
        self.action_retry()

    @on(Button.Pressed, "#quit")
    def _quit(self) -> None:
        self.app.exit()
