"""The demo's stand-in for "another system": it receives MAX's outbound webhooks and the Chat App
replies, verifies each as a real receiver must (Standard Webhooks, plus MAX's ``X-MAX-Signature``),
logs it, and answers 200 only when the signatures hold (401 otherwise, so MAX shows the failure).

Every delivery is also appended to a JSON-lines journal (``webhooks.jsonl`` in the demo's data
directory) that people can ``tail -f``.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from max_server.domain import signatures
from max_server.serve import ThreadedServer

log = logging.getLogger("max.demo.receiver")
EVENTS_PATH = "/max-events"
CHAT_APP_PATH = "/chat-app/replies"


@dataclass(frozen=True)
class ChatAppReply:
    """An agent's reply that MAX posted to the Chat App's callback URL."""

    customer_id: str | None
    text: str | None


class Receiver:
    """Serves :data:`EVENTS_PATH` (MAX's webhooks) and :data:`CHAT_APP_PATH` (Chat App replies)
    on loopback. ``events_secret`` is set once the subscription exists; until then deliveries are
    answered 503, which MAX retries."""

    def __init__(self, chat_app_secret: str, journal: Path | None = None) -> None:
        self.chat_app_secret = chat_app_secret
        self.events_secret: str | None = None
        self.journal = journal
        self.on_chat_app_reply: Callable[[ChatAppReply], object] | None = None
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._seen: set[str] = set()
        app = Starlette(
            routes=[
                Route(EVENTS_PATH, self._event, methods=["POST"]),
                Route(CHAT_APP_PATH, self._chat_app_reply, methods=["POST"]),
                Route("/", self._summary, methods=["GET"]),
            ]
        )
        self._server = ThreadedServer(app)
        self.url = self._server.url

    @property
    def events_url(self) -> str:
        return self.url + EVENTS_PATH

    @property
    def chat_app_url(self) -> str:
        return self.url + CHAT_APP_PATH

    def start(self) -> Receiver:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def counts(self) -> dict[str, int]:
        """``verified``, ``refused``, ``duplicates`` and ``chat_app_replies`` so far."""
        with self._lock:
            return dict(self._counts)

    # Endpoints ---------------------------------------------------------------------------------
    async def _event(self, request: Request) -> Response:
        body = await request.body()  # the raw bytes: a signature covers exactly these
        headers = {k.lower(): v for k, v in request.headers.items()}
        secret = self.events_secret
        if secret is None:
            return PlainTextResponse("not ready", status_code=503)
        problem = verify(secret, headers, body, time.time())
        webhook_id = headers.get("webhook-id", "")
        event_type = headers.get("x-max-event", "")
        if problem is not None:
            self._record("refused", {"webhook_id": webhook_id, "type": event_type, "problem": problem})
            log.warning("webhook %s (%s) refused: %s", webhook_id, event_type, problem)
            return PlainTextResponse(problem, status_code=401)
        with self._lock:
            duplicate = webhook_id in self._seen  # retries reuse the webhook-id
            self._seen.add(webhook_id)
        event = json.loads(body)
        self._record(
            "duplicates" if duplicate else "verified",
            {"webhook_id": webhook_id, "type": event.get("type"), "seq": event.get("seq"), "verified": True},
        )
        log.info("webhook %s verified: %s (seq %s)", webhook_id, event.get("type"), event.get("seq"))
        return PlainTextResponse("verified")

    async def _chat_app_reply(self, request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        problem = signatures.verify([self.chat_app_secret], headers, body, time.time())
        if problem is not None:
            self._record("refused", {"chat_app_reply": True, "problem": problem})
            return PlainTextResponse(problem, status_code=401)
        reply = json.loads(body)
        self._record("chat_app_replies", {"chat_app_reply": True, "customer_id": reply.get("customer_id")})
        log.info("Chat App reply verified for customer %s", reply.get("customer_id"))
        if self.on_chat_app_reply is not None:
            self.on_chat_app_reply(ChatAppReply(reply.get("customer_id"), reply.get("text")))
        return PlainTextResponse("ok")

    async def _summary(self, request: Request) -> Response:
        return JSONResponse(self.counts())

    def _record(self, outcome: str, entry: dict[str, Any]) -> None:
        with self._lock:
            self._counts[outcome] += 1
            if self.journal is not None:
                line = json.dumps({"at": round(time.time(), 3), "outcome": outcome, **entry})
                with self.journal.open("a", encoding="utf-8") as handle:
                    handle.write(line + "\n")


def verify(secret: str, headers: dict[str, str], body: bytes, now: float) -> str | None:
    """What a receiver of MAX's webhooks checks; None when the delivery is authentic.

    ``webhook-signature`` (Standard Webhooks: ``{id}.{timestamp}.{body}``, timestamp within five
    minutes) and ``X-MAX-Signature`` (hex HMAC-SHA256 of the body with the secret string)."""
    problem = signatures.verify([secret], headers, body, now)
    if problem is not None:
        return f"webhook-signature: {problem}"
    expected = signatures.hex_signature(secret, body)
    if not hmac.compare_digest(expected, headers.get("x-max-signature", "")):
        return "X-MAX-Signature does not match"
    return None
