"""Job ``whatsapp.send``: one agent message through the Graph API.

Retries only when the call certainly did not take effect (connection refused, Meta's 5xx or
throttling); a call that may have reached Meta and got no answer marks the message ``unknown``
instead of risking a duplicate (its first status webhook then tells the truth). Meta's refusals
are shown on the message; 131047 also marks the conversation's window closed.
"""

from __future__ import annotations

import re
from typing import Any

from max_server import httpclients
from max_server.channels.whatsapp.graph import GraphClient, GraphError, GraphUnreachable, text_body
from max_server.jobs.registry import JobContext, RetryLater, RetryPolicy, handler
from max_server.models import CustomerIdentity
from max_server.services import outbound, statuses
from max_server.settings import Settings


def graph_client(settings: Settings) -> GraphClient:
    """One client (and connection pool) per process and configuration."""
    url, token, timeout = (
        settings.whatsapp.graph_url,
        settings.whatsapp.access_token,
        float(settings.whatsapp.timeout),
    )
    return httpclients.shared(
        ("graph", url, token, timeout), lambda: GraphClient(url, token, timeout=timeout)
    )


def recipient(identity: CustomerIdentity | None) -> str | None:
    """Meta wants ``+`` and the country code for phone numbers; other ids go as they are."""
    if identity is None:
        return None
    key = identity.external_id
    return "+" + key if key.isdigit() else key


def graph_error(exc: GraphError) -> dict[str, Any]:
    # Meta prefixes its messages with the code: "(#131047) Re-engagement message".
    title = re.sub(r"^\(#\d+\)\s*", "", exc.message or "") or f"error {exc.code}"
    return {"code": exc.code, "title": title, "message": exc.message, "details": exc.details}


@handler("whatsapp.send", RetryPolicy(max_attempts=8, base_delay=5, max_delay=900))
def send(ctx: JobContext, payload: dict[str, Any]) -> None:
    message_id = int(payload["message_id"])
    outgoing = outbound.begin(ctx.db, message_id)
    if outgoing is None:
        return
    to = recipient(outgoing.identity)
    if to is None:
        outbound.failed(
            ctx.db,
            message_id,
            {"code": None, "title": "no WhatsApp identity to reply to", "message": None, "details": None},
        )
        return
    client = graph_client(ctx.settings)
    body = outgoing.message.payload.get("graph_body") if outgoing.message.type == "template" else None
    if body is None:
        body = text_body(to, outgoing.message.content_text or "")
    else:
        body = {**body, "to": to}
    # Meta echoes this in every status of the message: a send whose answer is lost (``unknown``)
    # still learns its wamid and its fate from the first status (see services.statuses).
    body["biz_opaque_callback_data"] = statuses.callback_data(message_id)
    try:
        result = client.send_message(outgoing.account.external_id, body)
    except GraphError as exc:
        if exc.retryable and not ctx.last_attempt:
            outbound.back_to_pending(ctx.db, message_id)
            raise RetryLater(f"Graph API {exc.status} ({exc.code}): {exc.message}") from None
        outbound.failed(ctx.db, message_id, graph_error(exc), window_closed=exc.window_closed)
        return
    except GraphUnreachable as exc:
        if exc.ambiguous:
            outbound.unknown(
                ctx.db, message_id, f"no answer from WhatsApp ({exc}); it may or may not have been sent"
            )
            return
        if ctx.last_attempt:
            outbound.failed(
                ctx.db,
                message_id,
                {"code": None, "title": "WhatsApp unreachable", "message": str(exc), "details": None},
            )
            return
        outbound.back_to_pending(ctx.db, message_id)
        raise RetryLater(f"Graph API unreachable: {exc}") from None
    outbound.sent(ctx.db, message_id, result.wamid)
