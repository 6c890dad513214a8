"""Outbound webhooks against real receivers on loopback, verified as a receiver would verify them
(the ``standardwebhooks`` package and a plain HMAC of the received bytes)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from max_server.db import Database
from max_server.jobs.worker import Worker
from max_server.realtime import Sequencer
from max_server.serve import ThreadedServer
from tests.channels.conftest import app, graph_url, settings, whatsapp, worker  # noqa: F401
from tests.conftest import People, bearer
from tests.support.live import LiveServer


@dataclass
class Delivered:
    path: str
    headers: dict[str, str]  # names lowercased
    body: bytes

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """An HTTP endpoint that records every POST and answers as told (status, optional delay,
    body and headers)."""

    def __init__(self) -> None:
        self.received: list[Delivered] = []
        self._answers: deque[tuple[int, float, bytes | None, dict[str, str]]] = deque()
        self._lock = threading.Condition()
        self.server = ThreadedServer(
            Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST"])])
        )

    @property
    def url(self) -> str:
        return self.server.url + "/hooks/max"

    def answer_next(
        self,
        *statuses: int,
        delay: float = 0.0,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        with self._lock:
            self._answers.extend((s, delay, body, headers or {}) for s in statuses)

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            planned = self._answers.popleft() if self._answers else (200, 0.0, None, {})
        status, delay, answer, headers = planned
        if delay:
            import asyncio

            await asyncio.sleep(delay)
        with self._lock:
            self.received.append(
                Delivered(request.url.path, {k.lower(): v for k, v in request.headers.items()}, body)
            )
            self._lock.notify_all()
        text = answer if answer is not None else f"answered {status}".encode()
        return Response(text, status_code=status, headers=headers)

    def at(self, path: str) -> list[Delivered]:
        with self._lock:
            return [d for d in self.received if d.path == path]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Delivered]:
        with self._lock:
            self._lock.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)

    def __enter__(self) -> Receiver:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def verify(delivered: Delivered, secret: str, previous: str | None = None) -> Any:
    """What a receiver does: the Standard Webhooks signature (computed with the package over the
    received bytes at the header's timestamp) and X-MAX-Signature. Returns the parsed body."""
    headers = delivered.headers
    stamp = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
    offered = headers["webhook-signature"].split(" ")
    text = delivered.body.decode("utf-8")
    assert Webhook(secret).sign(headers["webhook-id"], stamp, text) in offered
    if previous is not None:
        assert Webhook(previous).sign(headers["webhook-id"], stamp, text) in offered
    expected_hex = hmac.new(secret.encode(), delivered.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-max-signature"], expected_hex)
    return delivered.json()


def pump(db: Database, runner: Worker) -> int:
    """Sequences committed events (creating deliveries), then runs every due job."""
    Sequencer(db).run_once()
    return runner.drain()


@pytest.fixture
def admin_token(people: People) -> str:
    return people.user("admin", "Ada Admin")[1]


class Admin:
    def __init__(self, base: str, token: str) -> None:
        self.http = httpx.Client(base_url=base, headers=bearer(token), timeout=30)

    def subscribe(self, url: str, events: list[str], **fields: Any) -> dict[str, Any]:
        response = self.http.post("/api/v1/webhooks", json={"url": url, "events": events, **fields})
        assert response.status_code == 201, response.text
        return response.json()

    def __getattr__(self, method: str) -> Any:
        return getattr(self.http, method)


@pytest.fixture
def admin(live: LiveServer, admin_token: str) -> Iterator[Admin]:
    client = Admin(live.url, admin_token)
    yield client
    client.http.close()


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)
