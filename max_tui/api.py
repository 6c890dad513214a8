"""The REST calls the console makes, typed with the wire models (``max_server.schemas``).

Only ``max_server.client`` and ``max_server.schemas`` are imported: the console never loads the
server's database or web stack (a test checks).
"""

from __future__ import annotations

from typing import Any

from max_server.client import AsyncMaxClient
from max_server.schemas import ConversationPublic, Me, MessagePublic, Priority, TeamPublic

CONVERSATIONS = "/api/v1/conversations"
QUEUE_LIMIT = 1000  # per tab: a console is for working a queue, not for browsing the archive
THREAD_LIMIT = 2000


class ConsoleApi:
    def __init__(self, client: AsyncMaxClient) -> None:
        self.client = client

    async def me(self) -> Me:
        return Me.model_validate(await self.client.get("/api/v1/me"))

    async def presence(self, presence: str) -> None:
        await self.client.put("/api/v1/me/presence", {"presence": presence})

    async def conversations(self, limit: int = QUEUE_LIMIT, **filters: Any) -> list[ConversationPublic]:
        found: list[ConversationPublic] = []
        async for item in self.client.paginate(
            CONVERSATIONS, "conversations", limit=min(limit, 500), **filters
        ):
            found.append(ConversationPublic.model_validate(item))
            if len(found) >= limit:
                break
        return found

    async def queues(self, everything: bool) -> list[ConversationPublic]:
        """What the tabs show: assigned to me, the unassigned queue, and (supervisors) all open."""
        merged: dict[str, ConversationPublic] = {}
        batches = [await self.conversations(status="open", assignee="me")]
        batches.append(await self.conversations(status="open" if everything else "queued"))
        for batch in batches:
            merged.update((c.id, c) for c in batch)
        return list(merged.values())

    async def conversation(self, conversation_id: str) -> ConversationPublic:
        return ConversationPublic.model_validate(await self.client.get(f"{CONVERSATIONS}/{conversation_id}"))

    async def messages(
        self, conversation_id: str, limit: int = THREAD_LIMIT
    ) -> tuple[list[MessagePublic], int]:
        """Oldest first; the last ``limit`` messages and how many earlier ones were left out."""
        found: list[MessagePublic] = []
        async for item in self.client.paginate(
            f"{CONVERSATIONS}/{conversation_id}/messages", "messages", limit=500
        ):
            found.append(MessagePublic.model_validate(item))
        earlier = max(len(found) - limit, 0)
        return found[earlier:], earlier

    async def _action(self, conversation_id: str, verb: str, body: Any = None) -> ConversationPublic:
        wire = await self.client.post(f"{CONVERSATIONS}/{conversation_id}/{verb}", body)
        return ConversationPublic.model_validate(wire)

    async def assign(self, conversation_id: str, user_id: str | None) -> ConversationPublic:
        return await self._action(conversation_id, "assign", {"user_id": user_id})

    async def transfer(self, conversation_id: str, team: str) -> ConversationPublic:
        return await self._action(conversation_id, "transfer", {"team": team})

    async def close(self, conversation_id: str, reason: str) -> ConversationPublic:
        return await self._action(conversation_id, "close", {"reason": reason})

    async def reopen(self, conversation_id: str) -> ConversationPublic:
        return await self._action(conversation_id, "reopen")

    async def set_priority(self, conversation_id: str, priority: Priority) -> ConversationPublic:
        wire = await self.client.patch(f"{CONVERSATIONS}/{conversation_id}", {"priority": priority})
        return ConversationPublic.model_validate(wire)

    async def reply(self, conversation_id: str, text: str) -> MessagePublic:
        wire = await self.client.post(f"{CONVERSATIONS}/{conversation_id}/messages", {"text": text})
        return MessagePublic.model_validate(wire)

    async def teams(self) -> list[TeamPublic]:
        return [TeamPublic.model_validate(t) async for t in self.client.paginate("/api/v1/teams", "teams")]
