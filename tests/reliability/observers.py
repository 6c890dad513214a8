"""What the outside world sees of a cluster: agents following the live stream over a websocket
(resuming after a drop, as the console does), and a webhook receiver that records every
delivery and fails some first attempts on purpose."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from max_server.serve import ThreadedServer


class EventFollower:
    """An agent's live connection: ``/api/v1/events?after=<last seq>``, reconnecting (to
    whichever process ``url_for()`` names then) whenever the connection drops."""

    def __init__(
        self, name: str, token: str, url_for: Callable[[], str], after: int, via_query: bool = False
    ) -> None:
        self.name, self.token, self.url_for = name, token, url_for
        self.via_query = via_query  # the token in ?token= (clients that cannot set headers)
        self.last = after
        self.seqs: list[int] = []
        self.events: dict[int, dict[str, Any]] = {}
        self.connections = 0
        self.resyncs: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"follower-{name}", daemon=True)

    def start(self) -> EventFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def wait_for(self, seq: int, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self.last >= seq:
                    return True
            time.sleep(0.1)
        return False

    def _run(self) -> None:
        while not self._stop.is_set():
            url = self.url_for().replace("http://", "ws://") + f"/api/v1/events?after={self.last}"
            headers = {} if self.via_query else {"Authorization": f"Bearer {self.token}"}
            if self.via_query:
                url += f"&token={self.token}"
            try:
                with connect(url, additional_headers=headers, open_timeout=10) as ws:
                    self.connections += 1
                    while not self._stop.is_set():
                        try:
                            raw = ws.recv(timeout=0.5)
                        except TimeoutError:
                            continue
                        self._take(json.loads(raw))
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
                self.errors.append(type(exc).__name__)
                self._stop.wait(0.3)  # the process is gone or restarting: reconnect and resume

    def _take(self, frame: dict[str, Any]) -> None:
        if "control" in frame:
            if frame["control"] == "resync":
                self.resyncs.append(frame)
            return
        seq = int(frame["seq"])
        with self._lock:
            self.seqs.append(seq)
            self.events[seq] = frame
            self.last = max(self.last, seq)


@dataclass
class Delivery:
    webhook_id: str
    event_id: str
    event_type: str
    body: bytes
    headers: dict[str, str]
    answered: int


@dataclass
class HookSink:
    """An outbound-webhook receiver on loopback. The first attempt of about one event in
    ``fail_one_in`` is answered 503, so MAX must retry it (with the same ``webhook-id``)."""

    fail_one_in: int = 25
    received: list[Delivery] = field(default_factory=list)
    _failed_once: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.server = ThreadedServer(Starlette(routes=[Route("/hooks", self._handle, methods=["POST"])]))

    @property
    def url(self) -> str:
        return self.server.url + "/hooks"

    def start(self) -> HookSink:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def _should_fail(self, webhook_id: str) -> bool:
        digest = int(hashlib.sha256(webhook_id.encode()).hexdigest(), 16)
        return self.fail_one_in > 0 and digest % self.fail_one_in == 0 and webhook_id not in self._failed_once

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        webhook_id = headers.get("webhook-id", "")
        try:
            event = json.loads(body)
            event_id, event_type = str(event["id"]), str(event["type"])
        except (ValueError, KeyError, TypeError):
            event_id, event_type = "", ""
        with self._lock:
            status = 503 if self._should_fail(webhook_id) else 200
            if status == 503:
                self._failed_once.add(webhook_id)
            self.received.append(Delivery(webhook_id, event_id, event_type, body, headers, status))
        return Response(b"ok" if status == 200 else b"try again", status_code=status)

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self.received)
