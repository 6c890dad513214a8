"""Notifications: the unread counter in the top bar, a toast for each new one (escalations,
rate-limit blocks, template status changes) and for conversations assigned to the agent, and
the list (Ctrl+N)."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from max_server.client import ApiError
from max_server.schemas import NotificationPublic
from max_tui.dialogs.notifications import NotificationsDialog, kind_title
from max_tui.flows.base import Flow
from max_tui.widgets.top_bar import TopBar

log = logging.getLogger("max.tui.notifications")
SEVERITY = {"conversation.escalated": "error", "customer.rate_limited": "warning"}
TOAST_SECONDS = 8


class NotificationsFlow(Flow):
    unread = 0

    def set_unread(self, count: int) -> None:
        self.unread = max(count, 0)
        self.screen.query_one(TopBar).set_unread(self.unread)

    def refresh(self) -> None:
        self.run("notifications-count", self._count, exclusive=True)

    async def _count(self) -> None:
        try:
            listed = await self.api.notifications(limit=1)
        except ApiError as exc:
            log.info("notifications not loaded: %s", exc)
            return
        self.set_unread(listed.unread_count)

    def created(self, data: dict[str, Any]) -> None:
        """``notification.created``: count it and show a toast (only our own: a server that
        sent us someone else's must not raise our counter)."""
        try:
            item = NotificationPublic.model_validate(data)
        except ValidationError:
            return
        if item.user_id != self.ctx.viewer.user_id:
            log.warning("ignored notification %s addressed to another user", item.id)
            return
        if item.read_at is None:
            self.set_unread(self.unread + 1)
        severity = SEVERITY.get(item.kind, "information")
        self.screen.notify(item.text, title=kind_title(item.kind), severity=severity, timeout=TOAST_SECONDS)  # type: ignore[arg-type]

    def assigned_to_me(self, number: int) -> None:
        self.screen.notify(f"#{number} was assigned to you", title="Assigned", timeout=TOAST_SECONDS)

    def show(self) -> None:
        self.run("notifications", self._show)

    async def _show(self) -> None:
        chosen = await self.screen.app.push_screen_wait(
            NotificationsDialog(
                self.api.notifications,
                self.api.mark_read,
                self.api.mark_all_read,
                self.ctx.now(),
                self.ctx.tz,
                self.set_unread,
            )
        )
        if chosen is not None:
            await self.screen.open_conversation(chosen, focus_composer=True)
