"""A deterministic data source for snapshot tests: recorded wire JSON served by an httpx transport,
and a live stream that says "ready" and then stays quiet.

Why not the real server here: a snapshot must be identical on every run, and a live server's
ids, timestamps and ordering are not (they depend on the wall clock and on what ran before).
Everything else in ``tests/tui`` runs against a real server. The recorded JSON is validated
against the same wire models the server answers with (``test_recorded_wire_matches_the_schemas``),
so it cannot drift from the API unnoticed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from max_tui.app import MaxApp
from max_tui.live import FrameStream
from max_tui.storage import DraftStore

WIRE = Path(__file__).with_name("wire") / "console.json"
SERVER = "http://max.test"
FIXED_NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
MINE = ("101", "102", "100")
QUEUED = ("103", "104")


def wire() -> dict[str, Any]:
    return dict(json.loads(WIRE.read_text(encoding="utf-8")))


class RecordedApi:
    """Answers the console's REST calls from the recorded JSON (and notes what it was asked)."""

    def __init__(self) -> None:
        self.data = wire()
        self.calls: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.method, str(request.url)))
        path, params = request.url.path, request.url.params
        conversations = self.data["conversations"]
        if path == "/api/v1/me":
            return httpx.Response(200, json=self.data["me"])
        if path == "/api/v1/me/presence":
            return httpx.Response(200, json={k: v for k, v in self.data["me"].items() if k != "teams"})
        if path == "/api/v1/conversations":
            ids = (
                MINE if params.get("assignee") == "me" else QUEUED if params.get("status") == "queued" else ()
            )
            return httpx.Response(
                200, json={"conversations": [conversations[i] for i in ids], "next_cursor": None}
            )
        parts = path.removeprefix("/api/v1/conversations/").split("/")
        if parts[0] in conversations and len(parts) == 1:
            return httpx.Response(200, json=conversations[parts[0]])
        if parts[0] in conversations and parts[1:] == ["messages"]:
            messages = self.data["messages"].get(parts[0], [])
            return httpx.Response(200, json={"messages": messages, "next_cursor": None})
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "not recorded"}})


class QuietStream:
    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[str]:
        yield json.dumps({"control": "ready", "latest_seq": 0})
        await self.closed.wait()

    async def close(self) -> None:
        self.closed.set()


@asynccontextmanager
async def quiet_connector(url: str) -> AsyncIterator[FrameStream]:
    yield QuietStream()


def recorded_app(data_dir: Path, drafts: dict[str, str] | None = None) -> MaxApp:
    store = DraftStore(data_dir, SERVER, "7")
    for conversation_id, text in (drafts or {}).items():
        store.set(conversation_id, text)
    store.save()
    app = MaxApp(
        SERVER,
        "max_recorded",
        transport=httpx.MockTransport(RecordedApi()),
        connector=quiet_connector,
        now=lambda: FIXED_NOW,
        tz=UTC,
        data_dir=data_dir,
    )
    app.animation_level = "none"  # the tab underline slides when a count changes: snapshot the result
    return app
