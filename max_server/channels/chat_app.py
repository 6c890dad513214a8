"""The company's own Chat App (Chatwoot's "API channel" is the model).

The app's backend posts customer messages to ``POST /channels/chat-app/messages``, signed like
MAX's outbound webhooks (Standard Webhooks, keyed with ``chat_app.secret``). Agents' replies go
to ``chat_app.callback_url`` as signed jobs, in order per conversation, with an
``Idempotency-Key`` so a retried delivery is recognisable.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from max_server import clock, httpclients, netguard
from max_server.domain import signatures
from max_server.domain.phones import to_e164
from max_server.jobs.registry import JobContext, RetryLater, RetryPolicy, handler
from max_server.services import outbound
from max_server.services.inbound import Inbound, MediaSpec

CHANNEL = "chat_app"


class ChatAppCustomer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1, max_length=128)
    name: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=32)


class ChatAppAttachment(BaseModel):
    model_config = ConfigDict(extra="ignore")
    url: str = Field(min_length=8, max_length=2048)
    filename: str | None = Field(None, max_length=255)
    mime_type: str | None = Field(None, max_length=255)


class ChatAppMessage(BaseModel):
    """What the app's backend posts for each customer message."""

    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1, max_length=200, description="The app's message id (dedupes redeliveries).")
    customer: ChatAppCustomer
    text: str | None = Field(None, max_length=20000)
    attachments: list[ChatAppAttachment] = Field(default_factory=list, max_length=10)
    sent_at: datetime | None = None
    app: str = Field("default", min_length=1, max_length=64, description="Which app, if you run several.")


def media_type_for(mime_type: str | None) -> str:
    major = (mime_type or "").split("/", 1)[0]
    return major if major in ("image", "video", "audio") else "document"


def to_inbound(message: ChatAppMessage, account: Any) -> Inbound:
    media = [
        MediaSpec(
            media_type=media_type_for(a.mime_type),
            source_url=a.url,
            mime_type=a.mime_type,
            filename=a.filename,
        )
        for a in message.attachments
    ]
    type_ = "text" if not media else media[0].media_type
    return Inbound(
        channel=CHANNEL,
        account=account,
        channel_message_id=message.id,
        identity_keys=[message.customer.id],
        type=type_,
        text=message.text,
        payload=message.model_dump(mode="json"),
        sent_at=message.sent_at,
        display_name=message.customer.name,
        phone_e164=to_e164(message.customer.phone),
        email=message.customer.email.lower() if message.customer.email else None,
        media=media,
    )


def signed_headers(
    secret: str, body: bytes, msg_id: str | None = None, now: float | None = None
) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(now if now is not None else clock.now().timestamp())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures.sign(secret, msg_id, timestamp, body),
        "content-type": "application/json",
    }


def _http(timeout: float, callback_url: str) -> httpx.Client:
    # One pool per callback host: the guard pins the URL to the checked address, and a pool
    # shared by two host names on one address would reuse one's TLS connection for the other.
    host = urlsplit(callback_url).hostname or ""
    return httpclients.shared(("chat_app", timeout, host), lambda: httpx.Client(timeout=timeout))


@handler("chat_app.send", RetryPolicy(max_attempts=8, base_delay=5, max_delay=900))
def send(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Posts an agent's reply to the app's callback URL. Retrying is safe: the app dedupes on
    ``Idempotency-Key``, so nothing here ends ``unknown``; a message found ``sending`` (a worker
    lost mid-call) is simply posted again with the same key."""
    message_id = int(payload["message_id"])
    settings = ctx.settings
    outgoing = outbound.begin(ctx.db, message_id, resend_in_flight=True)
    if outgoing is None:
        return None
    if not settings.chat_app.callback_url:
        outbound.failed(ctx.db, message_id, _error("chat_app.callback_url is not configured"))
        return None
    body = json.dumps(
        {
            "id": str(message_id),
            "type": "message.created",
            "conversation_id": str(outgoing.conversation.id),
            "customer_id": outgoing.identity.external_id if outgoing.identity else None,
            "text": outgoing.message.content_text,
            "sent_at": clock.now().isoformat(),
            "app": outgoing.account.external_id,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    headers = signed_headers(settings.chat_app.secret, body, msg_id=f"msg_{message_id}")
    headers["Idempotency-Key"] = f"max-message-{message_id}"
    try:
        response = netguard.request(
            _http(float(settings.webhooks.timeout), settings.chat_app.callback_url),
            "POST",
            settings.chat_app.callback_url,
            content=body,
            headers=headers,
            allow_private=settings.webhooks.allow_private_networks,
        )
    except netguard.AddressRefused as exc:
        outbound.failed(ctx.db, message_id, _error(str(exc)))
        return None
    except httpx.HTTPError as exc:
        return _retry_or_fail(ctx, message_id, f"{type(exc).__name__}: {exc}")
    if 200 <= response.status_code < 300:
        outbound.sent(ctx.db, message_id, f"max-message-{message_id}")
        return None
    if response.status_code in (408, 429) or response.status_code >= 500:
        return _retry_or_fail(ctx, message_id, f"callback answered {response.status_code}")
    outbound.failed(
        ctx.db, message_id, _error(f"callback answered {response.status_code}", response.text[:1000])
    )
    return None


def _retry_or_fail(ctx: JobContext, message_id: int, reason: str) -> None:
    if ctx.last_attempt:
        outbound.failed(ctx.db, message_id, _error(reason))
        return
    outbound.back_to_pending(ctx.db, message_id)
    raise RetryLater(reason)


def _error(title: str, details: str | None = None) -> dict[str, Any]:
    return {"code": None, "title": title, "message": title, "details": details}
