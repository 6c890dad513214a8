"""SLA in the queue and the thread: the policies that say how far along a deadline is, and the
supervisors' SLA screen (F10)."""

from __future__ import annotations

import logging
from datetime import datetime

from max_server.client import ApiError
from max_server.schemas import ConversationPublic
from max_tui.flows.base import Flow
from max_tui.sla import Countdown, countdown, policy_map

log = logging.getLogger("max.tui.sla")


class SlaFlow(Flow):
    def countdown(self, conversation: ConversationPublic, now: datetime) -> Countdown | None:
        return countdown(conversation, now, self.ctx.policies, self.ctx.warned)

    def load_policies(self) -> None:
        self.run("policies", self._load, exclusive=True)

    async def _load(self) -> None:
        try:
            policies = await self.api.sla_policies()
        except ApiError as exc:
            log.info("SLA policies not loaded: %s", exc)
            return
        self.ctx.policies = policy_map(policies)
        self.screen.refresh_queue()
        self.show()

    def show(self) -> None:
        """The open conversation's countdown (also every few seconds: time moves on)."""
        self.screen.thread.show_sla(self.screen.current, self.ctx.now(), self.ctx.policies, self.ctx.warned)

    def open_screen(self) -> None:
        from max_tui.screens.sla import SlaScreen

        self.screen.app.push_screen(SlaScreen(self.api, self.ctx.now, self.ctx.tz))
