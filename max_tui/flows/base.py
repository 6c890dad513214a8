"""The little a flow needs from the main screen."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from max_tui.api import ConsoleApi
    from max_tui.screens.main import MainScreen
    from max_tui.session import ConsoleContext


class Flow:
    def __init__(self, screen: MainScreen) -> None:
        self.screen = screen

    @property
    def ctx(self) -> ConsoleContext:
        return self.screen.ctx

    @property
    def api(self) -> ConsoleApi:
        return self.screen.ctx.api

    def run(self, work: Coroutine[Any, Any, object], group: str, *, exclusive: bool = False) -> None:
        """In a worker of the screen: never on the event loop's critical path, and dialogs can
        be awaited there (``push_screen_wait``)."""
        self.screen.run_worker(work, group=group, exclusive=exclusive, exit_on_error=False)
