"""A previous conversation of the customer, read-only (Enter on the sidebar's history): its
header and messages, nothing to type into. Escape closes it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label

from max_server.client import ApiError
from max_tui.api import ConsoleApi
from max_tui.widgets.thread import ThreadView


class HistoryDialog(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close", id="history.close")]
    AUTO_FOCUS = "#thread-messages"

    def __init__(
        self, api: ConsoleApi, conversation_id: str, now: Callable[[], datetime], tz: tzinfo
    ) -> None:
        super().__init__()
        self.api, self.conversation_id, self.now, self.tz = api, conversation_id, now, tz

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog history"):
            yield Label("Earlier conversation (read-only)", classes="dialog-title", markup=False)
            yield ThreadView(self.tz, id="history-thread")
            yield Label("↑↓ scroll · esc close", classes="dialog-hint", markup=False)

    def on_mount(self) -> None:
        self.load()

    @work(exclusive=True, group="history", exit_on_error=False)
    async def load(self) -> None:
        thread = self.query_one(ThreadView)
        try:
            conversation = await self.api.conversation(self.conversation_id)
            messages, earlier = await self.api.messages(self.conversation_id)
        except ApiError as exc:
            thread.show_header(None)
            self.query_one(".dialog-title", Label).update(f"Cannot open it: {exc.message}")
            return
        await thread.open(conversation)
        await thread.set_messages(conversation.id, messages, self.now(), earlier)

    def action_close(self) -> None:
        self.dismiss(None)
