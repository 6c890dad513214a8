"""The live connection: the websocket ``/api/v1/events`` worker that keeps the console current.

One long-running task (``LiveFeed.run``, started by ``MaxApp`` as a Textual worker) reads event
envelopes and posts them to the app as messages; nothing polls. After a drop it reconnects with
``after=<last seq>``, so the server replays what was missed, in order, and shows a discreet
"reconnecting" state meanwhile. When the server says ``resync`` (events were pruned, or we fell
too far behind) the next ``ready`` asks the app to reload everything instead.

The connection itself is a ``Connector`` (the URL in, an async context manager of text frames
out) so snapshot tests can feed recorded frames; the real one is the ``websockets`` client.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlencode

from textual.message import Message
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

log = logging.getLogger("max.tui.live")

CLOSE_UNAUTHORIZED = 4401
LiveStateName = Literal["connecting", "live", "reconnecting", "refused"]


class FrameStream(Protocol):
    def __aiter__(self) -> AsyncIterator[str | bytes]: ...

    async def close(self) -> None: ...


Connector = Callable[[str], AbstractAsyncContextManager[FrameStream]]


def websocket_connector(token: str) -> Connector:
    """The real connection (bearer token in the header, never in the URL: URLs end up in logs)."""
    from websockets.asyncio.client import connect

    def open_stream(url: str) -> AbstractAsyncContextManager[FrameStream]:
        return connect(
            url,
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=10,
            ping_interval=20,
            ping_timeout=20,
            max_size=2**24,
        )

    return open_stream


def stream_url(base_url: str, after: int | None) -> str:
    url = base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/api/v1/events"
    return url + ("?" + urlencode({"after": after}) if after is not None else "")


@dataclass
class LiveEvent(Message):
    """An event envelope ``{id, seq, type, created_at, data}``."""

    envelope: dict[str, Any]


@dataclass
class LiveState(Message):
    state: LiveStateName
    detail: str = ""


@dataclass
class LiveReady(Message):
    """The stream is current. ``reload``: what the console holds may be stale (first connection
    or a resync): load it again from the REST API."""

    reload: bool


class LiveFeed:
    def __init__(
        self,
        base_url: str,
        connector: Connector,
        post: Callable[[Message], object],
        *,
        first_delay: float = 0.5,
        max_delay: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.connector = connector
        self.post = post
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.last_seq: int | None = None
        self.last_url: str | None = None
        self.connections = 0
        self.state: LiveStateName = "connecting"
        self._reload_pending = True
        self._stream: FrameStream | None = None
        self._allowed = asyncio.Event()
        self._allowed.set()

    async def run(self) -> None:
        """Connects, reads, reconnects; returns only when the server refuses the token."""
        delay = self.first_delay
        while True:
            await self._allowed.wait()
            self.last_url = stream_url(self.base_url, self.last_seq)
            self._set_state("connecting" if self.connections == 0 else "reconnecting")
            try:
                async with self.connector(self.last_url) as stream:
                    self._stream = stream
                    self.connections += 1
                    async for raw in stream:
                        if self._handle(raw):
                            delay = self.first_delay
                    code = getattr(stream, "close_code", None)
                if code == CLOSE_UNAUTHORIZED:
                    self._set_state("refused", "the token was revoked")
                    return
                detail = "the connection was closed"
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in (401, 403):
                    self._set_state("refused", "the server refused the token")
                    return
                detail = f"the server answered HTTP {status}"
            except ConnectionClosed as exc:
                if exc.rcvd is not None and exc.rcvd.code == CLOSE_UNAUTHORIZED:
                    self._set_state("refused", "the token was revoked")
                    return
                detail = "the connection dropped"
            except (WebSocketException, OSError, TimeoutError) as exc:
                detail = f"cannot connect ({type(exc).__name__})"
            finally:
                self._stream = None
            log.info("live stream lost: %s; resuming after seq %s", detail, self.last_seq)
            self._set_state("reconnecting", detail)
            if self._allowed.is_set():
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_delay)

    def _handle(self, raw: str | bytes) -> bool:
        """Applies one frame; True once the stream is known to be healthy (``ready``)."""
        try:
            frame = json.loads(raw)
        except ValueError:
            log.warning("ignored a frame that is not JSON")
            return False
        if not isinstance(frame, dict):
            return False
        control = frame.get("control")
        if control == "resync":
            self._reload_pending = True
            self.last_seq = _int(frame.get("latest_seq"), self.last_seq)
            return False
        if control == "ready":
            if self.last_seq is None:
                self.last_seq = _int(frame.get("latest_seq"), None)
            self._set_state("live")
            self.post(LiveReady(reload=self._reload_pending))
            self._reload_pending = False
            return True
        if control is not None:
            return False
        seq = _int(frame.get("seq"), None)
        if seq is not None and self.last_seq is not None and seq <= self.last_seq:
            return False  # already seen (a replay overlapping what was pushed)
        if seq is not None:
            self.last_seq = seq
        self.post(LiveEvent(frame))
        return False

    def _set_state(self, state: LiveStateName, detail: str = "") -> None:
        if state != self.state or detail:
            self.state = state
            self.post(LiveState(state, detail))

    async def drop(self, hold: bool = False) -> None:
        """Closes the current connection (it reconnects at once, or after ``resume`` if ``hold``)."""
        if hold:
            self._allowed.clear()
        stream = self._stream
        if stream is not None:
            await stream.close()

    def resume(self) -> None:
        self._allowed.set()


def _int(value: object, default: int | None) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
