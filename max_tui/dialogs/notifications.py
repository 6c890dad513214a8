"""The agent's notifications (Ctrl+N): unread first, newest first. Enter marks one read and, when
it is about a conversation, opens it; ``a`` marks them all read. Dismisses with the conversation
to open, or None."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, tzinfo
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from max_server.client import ApiError
from max_server.schemas import NotificationList, NotificationPublic
from max_tui.formatting import clock_time

KIND_TITLES = {
    "conversation.escalated": "Escalated",
    "customer.rate_limited": "Rate limit",
    "template.status_updated": "Template",
    "conversation.assigned": "Assigned",
}


def kind_title(kind: str) -> str:
    return KIND_TITLES.get(kind, kind.split(".")[-1].replace("_", " ").capitalize())


def notification_label(item: NotificationPublic, now: datetime, tz: tzinfo) -> Content:
    unread = item.read_at is None
    return Content.assemble(
        ("● " if unread else "  ", "$text-accent"),
        (f"{kind_title(item.kind)} ", "bold" if unread else "$text-muted"),
        (item.text, "" if unread else "$text-muted"),
        (f" · {clock_time(item.created_at, now, tz)}", "$text-muted"),
    )


class NotificationsDialog(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Close", id="notifications.close"),
        Binding("a", "read_all", "Mark all read", id="notifications.read_all"),
    ]
    AUTO_FOCUS = "#notification-list"

    def __init__(
        self,
        load: Callable[[], Awaitable[NotificationList]],
        mark_read: Callable[[str], Awaitable[NotificationPublic]],
        mark_all: Callable[[], Awaitable[int]],
        now: datetime,
        tz: tzinfo,
        changed: Callable[[int], None],
    ) -> None:
        super().__init__()
        self.load, self.mark_read, self.mark_all = load, mark_read, mark_all
        self.now, self.tz = now, tz
        self.changed = changed  # tells the screen the unread count
        self.items: list[NotificationPublic] = []
        self.unread = 0

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog notifications"):
            yield Label("Notifications", classes="dialog-title", id="notifications-title", markup=False)
            yield OptionList(id="notification-list", markup=False)
            yield Label(
                "⏎ mark read and open · a mark all read · esc close", classes="dialog-hint", markup=False
            )

    def on_mount(self) -> None:
        self.fetch()

    @work(exclusive=True, group="notifications", exit_on_error=False)
    async def fetch(self) -> None:
        try:
            listed = await self.load()
        except ApiError as exc:
            self.query_one("#notifications-title", Label).update(f"Notifications: {exc.message}")
            return
        self.items, self.unread = list(listed.notifications), listed.unread_count
        self._show()

    def _show(self) -> None:
        options = self.query_one("#notification-list", OptionList)
        keep = options.highlighted
        options.set_options(Option(notification_label(n, self.now, self.tz), id=n.id) for n in self.items)
        if not self.items:
            options.add_option(Option(Content.styled("Nothing yet.", "$text-muted"), disabled=True))
        else:
            options.highlighted = min(keep or 0, len(self.items) - 1)
        title = f"Notifications · {self.unread} unread" if self.unread else "Notifications"
        self.query_one("#notifications-title", Label).update(title)
        self.changed(self.unread)

    @on(OptionList.OptionSelected, "#notification-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        item = next((n for n in self.items if n.id == event.option.id), None)
        if item is not None:
            self.open(item)

    @work(group="notifications-read", exit_on_error=False)
    async def open(self, item: NotificationPublic) -> None:
        if item.read_at is None:
            try:
                marked = await self.mark_read(item.id)
            except ApiError as exc:
                self.notify(exc.message, severity="error")
                return
            self.items = [marked if n.id == item.id else n for n in self.items]
            self.unread = max(self.unread - 1, 0)
            self._show()
        conversation_id = item.data.get("conversation_id")
        if isinstance(conversation_id, str | int):
            self.dismiss(str(conversation_id))

    @work(group="notifications-read", exit_on_error=False)
    async def action_read_all(self) -> None:
        try:
            await self.mark_all()
        except ApiError as exc:
            self.notify(exc.message, severity="error")
            return
        self.fetch()

    def action_cancel(self) -> None:
        self.dismiss(None)
