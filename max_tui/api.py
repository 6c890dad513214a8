"""The REST calls the console makes, typed with the wire models (``max_server.schemas``).

Only ``max_server.client`` and ``max_server.schemas`` are imported: the console never loads the
server's database or web stack (a test checks).
"""

from __future__ import annotations

from typing import Any

from max_server.client import AsyncMaxClient
from max_server.schemas import (
    CannedRendered,
    CannedResponsePublic,
    ConversationPublic,
    CustomerContext,
    CustomerPublic,
    LinkPublic,
    LinkSuggestion,
    Me,
    MediaLink,
    MessagePublic,
    NotificationList,
    NotificationPublic,
    Priority,
    SlaPolicyPublic,
    SlaReport,
    TeamPublic,
    TemplatePublic,
)

CONVERSATIONS = "/api/v1/conversations"
CANNED = "/api/v1/canned-responses"
CUSTOMERS = "/api/v1/customers"
CONTEXT_LIMIT = 20
MEDIA_LINK_TTL = "10m"  # long enough to save a large file; minted on each open, never stored
QUEUE_LIMIT = 1000  # per tab: a console is for working a queue, not for browsing the archive
SEARCH_LIMIT = 100  # search results shown at once (the agent refines the query for more)
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

    async def search_conversations(
        self, query: str, limit: int = SEARCH_LIMIT
    ) -> tuple[list[ConversationPublic], bool]:
        """The server's search over every conversation the agent may see, open or closed,
        newest first (``q``: customer, phone, ``#number``, subject, message text); and whether
        there are more than ``limit``."""
        wire = await self.client.get(CONVERSATIONS, q=query or None, status="all", limit=limit)
        found = [ConversationPublic.model_validate(c) for c in wire["conversations"]]
        return found, wire.get("next_cursor") is not None

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

    async def resend(self, conversation_id: str, message_id: str) -> MessagePublic:
        """A failed or unknown message sent again, as a new message (the original is flagged
        ``resent``). ``ApiError`` 409 ``already_resent``, ``not_resendable``,
        ``whatsapp_window_closed``."""
        wire = await self.client.post(f"{CONVERSATIONS}/{conversation_id}/messages/{message_id}/resend")
        return MessagePublic.model_validate(wire)

    async def teams(self) -> list[TeamPublic]:
        return [TeamPublic.model_validate(t) async for t in self.client.paginate("/api/v1/teams", "teams")]

    # Canned responses ------------------------------------------------------------------------
    async def canned(self, etag: str | None) -> tuple[list[CannedResponsePublic] | None, str | None]:
        """Every response the agent may use, or None when ``etag`` is still current (304)."""
        body, new_etag = await self.client.get_if_changed(CANNED, etag)
        if body is None:
            return None, new_etag
        return [CannedResponsePublic.model_validate(r) for r in body["responses"]], new_etag

    async def render_canned(
        self, response_id: str, conversation_id: str | None, variables: dict[str, str]
    ) -> CannedRendered:
        """Raises ``ApiError`` 422 ``missing_variables`` (``details.missing``) when some are unknown."""
        body = {"conversation_id": conversation_id, "variables": variables}
        return CannedRendered.model_validate(await self.client.post(f"{CANNED}/{response_id}/render", body))

    async def canned_used(self, response_id: str) -> None:
        await self.client.post(f"{CANNED}/{response_id}/used")

    # Customers -------------------------------------------------------------------------------
    async def customer(self, customer_id: str) -> CustomerPublic:
        return CustomerPublic.model_validate(await self.client.get(f"{CUSTOMERS}/{customer_id}"))

    async def customer_context(
        self, customer_id: str, exclude_conversation_id: str | None = None, limit: int = CONTEXT_LIMIT
    ) -> CustomerContext:
        wire = await self.client.get(
            f"{CUSTOMERS}/{customer_id}/context", limit=limit, exclude_conversation_id=exclude_conversation_id
        )
        return CustomerContext.model_validate(wire)

    async def search_customers(self, query: str, limit: int = 20) -> list[CustomerPublic]:
        wire = await self.client.get(CUSTOMERS, q=query, limit=limit)
        return [CustomerPublic.model_validate(c) for c in wire["customers"]]

    async def link_suggestions(self, customer_id: str) -> list[LinkSuggestion]:
        wire = await self.client.get(f"{CUSTOMERS}/{customer_id}/link-suggestions")
        return [LinkSuggestion.model_validate(s) for s in wire["suggestions"]]

    async def customer_links(self, customer_id: str) -> list[LinkPublic]:
        wire = await self.client.get(f"{CUSTOMERS}/{customer_id}/links", limit=50)
        return [LinkPublic.model_validate(link) for link in wire["links"]]

    async def link(self, primary_id: str, secondary_id: str) -> LinkPublic:
        wire = await self.client.post(
            f"{CUSTOMERS}/{primary_id}/link", {"secondary_customer_id": secondary_id}
        )
        return LinkPublic.model_validate(wire)

    async def undo_link(self, link_id: str) -> LinkPublic:
        return LinkPublic.model_validate(await self.client.post(f"{CUSTOMERS}/links/{link_id}/undo"))

    async def add_tags(self, customer_id: str, tags: list[str]) -> list[str]:
        wire = await self.client.post(f"{CUSTOMERS}/{customer_id}/tags", {"tags": tags})
        return list(wire["tags"])

    async def remove_tags(self, customer_id: str, tags: list[str]) -> list[str]:
        wire = await self.client.delete(f"{CUSTOMERS}/{customer_id}/tags", tag=tags)
        return list(wire["tags"])

    # Templates -------------------------------------------------------------------------------
    async def approved_templates(self, channel_account_id: str) -> list[TemplatePublic]:
        found: list[TemplatePublic] = []
        async for item in self.client.paginate(
            "/api/v1/whatsapp-templates",
            "templates",
            limit=500,
            status="APPROVED",
            channel_account_id=channel_account_id,
        ):
            found.append(TemplatePublic.model_validate(item))
        return found

    async def send_template(
        self,
        conversation_id: str,
        name: str,
        language: str,
        parameters: list[str] | dict[str, str],
        header_parameters: list[str] | None = None,
    ) -> MessagePublic:
        template: dict[str, Any] = {"name": name, "language": language, "parameters": parameters}
        if header_parameters:
            template["header_parameters"] = header_parameters
        wire = await self.client.post(f"{CONVERSATIONS}/{conversation_id}/messages", {"template": template})
        return MessagePublic.model_validate(wire)

    # SLA -------------------------------------------------------------------------------------
    async def sla_policies(self) -> list[SlaPolicyPublic]:
        wire = await self.client.get("/api/v1/sla/policies")
        return [SlaPolicyPublic.model_validate(p) for p in wire["policies"]]

    async def sla_reports(self, days: int) -> list[SlaReport]:
        """Every team's report over the last ``days`` days (supervisors and admins)."""
        wire = await self.client.get("/api/v1/sla/report", days=days)
        return [SlaReport.model_validate(r) for r in wire["reports"]]

    # Notifications ---------------------------------------------------------------------------
    async def notifications(self, limit: int = 100) -> NotificationList:
        return NotificationList.model_validate(await self.client.get("/api/v1/notifications", limit=limit))

    async def mark_read(self, notification_id: str) -> NotificationPublic:
        wire = await self.client.post(f"/api/v1/notifications/{notification_id}/read")
        return NotificationPublic.model_validate(wire)

    async def mark_all_read(self) -> int:
        return int((await self.client.post("/api/v1/notifications/read-all"))["marked"])

    # Media -----------------------------------------------------------------------------------
    async def media_link(self, media_id: str, ttl: str = MEDIA_LINK_TTL) -> MediaLink:
        """Metadata and a freshly signed ``url``. ``ApiError`` 409 ``media_pending`` /
        ``media_failed`` and 410 ``media_expired`` carry the reason."""
        return MediaLink.model_validate(await self.client.get(f"/api/v1/media/{media_id}", ttl=ttl))
