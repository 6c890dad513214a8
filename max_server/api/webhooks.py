"""Channel webhooks (public, each with its own check): WhatsApp and the Chat App.

Meta gets a quick, honest answer: 200 only after the commit; 401 for a wrong signature (nothing
stored); 413 over the size limit (without reading it whole); 503 when the database could not
take it, so Meta retries.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from max_server import clock, metrics
from max_server.api.bodies import read_limited
from max_server.api.deps import DbDep, SettingsDep
from max_server.channels import chat_app
from max_server.channels.whatsapp import ingest as whatsapp_ingest
from max_server.channels.whatsapp.webhook import Item, decode, parse, signature_valid
from max_server.db import Database
from max_server.domain import signatures
from max_server.domain.text import storable
from max_server.errors import AppError, BadRequest, Forbidden, Unauthorized, Unprocessable
from max_server.services import channels, inbound
from max_server.settings import Settings

log = logging.getLogger("max.webhooks")
router = APIRouter(tags=["webhooks"])
# What ``storable`` replaces (NUL, lone surrogates) can only reach a decoded body through a
# ``\u`` escape of it, or through surrogate bytes (``json`` decodes bytes with surrogatepass;
# a raw NUL is not JSON): a body without any is stored as decoded, not walked on the event loop.
_MAY_BE_UNSTORABLE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])|\xed[\xa0-\xbf]|\x00")


@router.get("/webhooks/whatsapp", response_class=PlainTextResponse)
def whatsapp_handshake(
    settings: SettingsDep,
    mode: Annotated[str, Query(alias="hub.mode")] = "",
    verify_token: Annotated[str, Query(alias="hub.verify_token")] = "",
    challenge: Annotated[str, Query(alias="hub.challenge", max_length=256)] = "",
) -> PlainTextResponse:
    """Meta's subscription handshake: echo ``hub.challenge`` when the verify token matches."""
    expected = settings.whatsapp.verify_token
    if (
        mode != "subscribe"
        or not expected
        or not hmac.compare_digest(verify_token.encode(), expected.encode())
    ):
        raise Forbidden("the verify token does not match", code="verify_token_mismatch")
    return PlainTextResponse(challenge)


@router.post("/webhooks/whatsapp")
@router.post("/webhooks/whatsapp/template-status", include_in_schema=False)
async def whatsapp_webhook(request: Request, db: DbDep, settings: SettingsDep) -> dict[str, Any]:
    """Meta's notifications: messages, statuses, template updates. Signed with the app secret."""
    with observed("whatsapp"):
        raw = await read_limited(request, settings.server.max_body_bytes)
        if not signature_valid(raw, request.headers.get("x-hub-signature-256"), settings.whatsapp.app_secret):
            log.warning("WhatsApp webhook refused: bad or missing signature (%d bytes)", len(raw))
            raise Unauthorized("the X-Hub-Signature-256 signature does not match", code="invalid_signature")
        try:
            body = decode(raw)
        except ValueError as exc:
            raise BadRequest(f"the body is not JSON MAX can take: {exc}", code="invalid_json") from None
        if _MAY_BE_UNSTORABLE.search(raw):
            body = storable(body)  # NUL characters cannot be stored in PostgreSQL
        items = parse(body)
        counts = await run_in_threadpool(_store_whatsapp, db, settings, items)
    return {"status": "ok", "received": dict(counts)}


@contextmanager
def observed(channel: str) -> Iterator[None]:
    """Counts the webhook by outcome (the error's code, or ``accepted``) and times it."""
    started = time.perf_counter()
    outcome = "accepted"
    try:
        yield
    except AppError as exc:
        outcome = exc.code
        raise
    except OperationalError:
        outcome = "database_unavailable"
        raise
    except Exception:
        outcome = "error"
        raise
    finally:
        metrics.WEBHOOKS_RECEIVED.labels(channel, outcome).inc()
        metrics.INGEST_SECONDS.labels(channel).observe(time.perf_counter() - started)


def _store_whatsapp(db: Database, settings: Settings, items: list[Item]) -> Counter[str]:
    for attempt in range(3):
        try:
            with db.session() as session:
                counts = whatsapp_ingest.process(session, settings, items, clock.now())
                session.commit()
            return counts
        except OperationalError as exc:
            # Two webhooks touching the same rows in opposite orders: PostgreSQL picks a victim.
            if not _is_transient(exc) or attempt == 2:
                raise
            log.info("webhook transaction retried after %s", type(exc.orig).__name__)
    raise AssertionError("unreachable")


def _is_transient(exc: OperationalError) -> bool:
    return type(exc.orig).__name__ in ("DeadlockDetected", "SerializationFailure")


@router.post("/channels/chat-app/messages")
async def chat_app_message(request: Request, db: DbDep, settings: SettingsDep) -> dict[str, Any]:
    """A customer message from the Chat App's backend, signed with ``chat_app.secret``."""
    with observed("chat_app"):
        return await _chat_app_message(request, db, settings)


async def _chat_app_message(request: Request, db: Database, settings: Settings) -> dict[str, Any]:
    raw = await read_limited(request, settings.server.max_body_bytes)
    secret = settings.chat_app.secret
    problem = (
        signatures.verify([secret], request.headers, raw, clock.now().timestamp())
        if secret
        else "not configured"
    )
    if problem is not None:
        log.warning("Chat App message refused: %s", problem)
        raise Unauthorized(f"the Chat App signature is not valid: {problem}", code="invalid_signature")
    try:
        message = chat_app.ChatAppMessage.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise Unprocessable(
            f"{where}: {first['msg']}", details=[{"loc": e["loc"], "msg": e["msg"]} for e in exc.errors()]
        ) from None
    return await run_in_threadpool(_store_chat_app, db, settings, message)


def _store_chat_app(db: Database, settings: Settings, message: chat_app.ChatAppMessage) -> dict[str, Any]:
    with db.session() as session:
        account = channels.account_for_ingest(
            session, chat_app.CHANNEL, message.app, name=f"Chat App {message.app}"
        )
        now = clock.now()
        stored = inbound.ingest(
            session,
            chat_app.to_inbound(message, account),
            now=now,
            reopen_window=settings.routing.reopen_window,
        )
        if stored is not None:
            inbound.after_ingest(session, stored, settings, now)
        session.commit()
    if stored is None:
        return {"status": "duplicate"}
    return {
        "status": "ok",
        "message_id": str(stored.message.id),
        "conversation_id": str(stored.conversation.id),
    }
