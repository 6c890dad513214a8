"""Live events (from the websocket, through ``MaxApp``) applied to what the screen shows.

Conversations and messages update the store, the queue and the thread; SLA warnings and breaches
recolour countdowns; files that finish downloading (or fail) update their lines; links, undos and
tag changes reload the customer sidebar; notifications count and toast. An event of a shape this
console cannot read (a newer server) is skipped, never fatal.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from max_server.client import ApiError
from max_server.schemas import ConversationPublic, MediaPublic, MessagePublic
from max_tui.flows.base import Flow
from max_tui.flows.customer import CUSTOMER_EVENTS

log = logging.getLogger("max.tui")


class EventsFlow(Flow):
    async def apply(self, envelope: dict[str, Any]) -> None:
        kind, data = str(envelope.get("type", "")), envelope.get("data")
        if not isinstance(data, dict):
            return
        try:
            await self._apply(kind, data)
        except (ValidationError, KeyError) as exc:  # a newer server's shape: skip it, keep going
            log.warning("ignored a %s event the console cannot read: %s", kind, exc)

    async def _apply(self, kind: str, data: dict[str, Any]) -> None:
        screen = self.screen
        if kind.startswith("conversation."):
            self.conversation(ConversationPublic.model_validate(data))
        elif kind in ("sla.warning", "sla.violated"):
            conversation = ConversationPublic.model_validate(data["conversation"])
            if kind == "sla.warning":
                self.ctx.warned.add((conversation.id, str(data.get("metric"))))
            self.conversation(conversation, force=True)
        elif kind in ("media.stored", "media.failed"):
            screen.thread.update_media(MediaPublic.model_validate(data), self.ctx.now())
        elif kind in CUSTOMER_EVENTS:
            screen.customer.on_event(data)
        elif kind == "notification.created":
            screen.notifications.created(data)
        elif kind in ("message.created", "message.status_updated"):
            message = MessagePublic.model_validate(data)
            if kind == "message.created":
                if self.ctx.store.note_message(message):
                    screen.refresh_queue()
                    if message.conversation_id == screen.current_id:
                        screen.show_current()
                elif self.ctx.store.get(message.conversation_id) is None:
                    self.run("fetch", self._fetch, message.conversation_id)
            await screen.thread.add_or_update(message, self.ctx.now())
            if message.conversation_id == screen.current_id:
                screen.refresh_bindings()  # a failed send offers Resend

    def conversation(self, conversation: ConversationPublic, force: bool = False) -> None:
        screen, held = self.screen, self.ctx.store.get(conversation.id)
        me = self.ctx.viewer.user_id
        newly_mine = (
            conversation.assignee is not None
            and conversation.assignee.id == me
            and (held is None or held.assignee is None or held.assignee.id != me)
        )
        if self.ctx.store.upsert(conversation) or force:
            screen.refresh_queue()
            if conversation.id == screen.current_id:
                screen.show_current()
        if newly_mine and conversation.id not in screen.acting_on and conversation.status != "closed":
            screen.notifications.assigned_to_me(conversation.number)

    async def _fetch(self, conversation_id: str) -> None:
        """A message for a conversation we did not hold (e.g. it became visible to us)."""
        try:
            conversation = await self.api.conversation(conversation_id)
        except ApiError:
            return  # not visible to us after all
        if self.ctx.store.upsert(conversation):
            self.screen.refresh_queue()
