"""The little a flow needs from the main screen."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
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

    def run(
        self,
        group: str,
        work: Callable[..., Coroutine[Any, Any, object]],
        *args: Any,
        exclusive: bool = False,
    ) -> None:
        """``work(*args)`` in a worker of the screen: never on the event loop's critical path,
        and dialogs can be awaited there (``push_screen_wait``). The coroutine is made when the
        worker starts: an exclusive worker cancelled before it started leaves none behind
        unawaited (Python warns of those, and the test suite treats warnings as errors)."""
        started: Callable[[], Coroutine[Any, Any, Any]] = functools.partial(work, *args)
        self.screen.run_worker(started, group=group, exclusive=exclusive, exit_on_error=False)
