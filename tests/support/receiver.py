"""A real HTTP receiver on loopback that records what it gets and answers as told."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from max_server.serve import ThreadedServer


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self._answers: deque[tuple[int, bytes]] = deque()
        self._lock = threading.Lock()
        self.arrived = threading.Condition(self._lock)
        app = Starlette(
            routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT", "DELETE"])]
        )
        self.server = ThreadedServer(app)
        self.url = self.server.url

    def answer_next(self, *statuses: int, body: bytes = b"") -> None:
        with self._lock:
            self._answers.extend((s, body) for s in statuses)

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            self.received.append(Received(request.method, request.url.path, dict(request.headers), body))
            status, answer = self._answers.popleft() if self._answers else (200, b"ok")
            self.arrived.notify_all()
        return Response(answer, status_code=status)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        with self._lock:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)

    def __enter__(self) -> Receiver:
        self.server.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.stop()
