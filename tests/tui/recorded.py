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
import re
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
WIRE_PART2 = Path(__file__).with_name("wire") / "part2.json"
SERVER = "http://max.test"
FIXED_NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
MINE = ("101", "102", "100")
QUEUED = ("103", "104")
ESCALATED = "105"  # assigned to Ana, escalated: listed only with ``escalated=True``


def wire() -> dict[str, Any]:
    return dict(json.loads(WIRE.read_text(encoding="utf-8")))


def wire2() -> dict[str, Any]:
    return dict(json.loads(WIRE_PART2.read_text(encoding="utf-8")))


def _json(data: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=data)


NOT_RECORDED = {"error": {"code": "not_found", "message": "not recorded"}}


class RecordedApi:
    """Answers the console's REST calls from the recorded JSON (and notes what it was asked)."""

    def __init__(self, role: str = "agent", escalated: bool = False) -> None:
        self.data = wire()
        self.data["me"]["role"] = role
        self.part2 = wire2()
        self.mine = MINE + ((ESCALATED,) if escalated else ())
        self.calls: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.method, str(request.url)))
        answer = self.part2_answer(request)
        if answer is not None:
            return answer
        path, params = request.url.path, request.url.params
        conversations = self.data["conversations"]
        if path == "/api/v1/me":
            return httpx.Response(200, json=self.data["me"])
        if path == "/api/v1/me/presence":
            return httpx.Response(200, json={k: v for k, v in self.data["me"].items() if k != "teams"})
        if path == "/api/v1/conversations":
            ids = (
                self.mine
                if params.get("assignee") == "me"
                else QUEUED
                if params.get("status") == "queued"
                else ()
            )
            return httpx.Response(
                200, json={"conversations": [conversations[i] for i in ids], "next_cursor": None}
            )
        parts = path.removeprefix("/api/v1/conversations/").split("/")
        if parts[0] in conversations and len(parts) == 1:
            return httpx.Response(200, json=conversations[parts[0]])
        if parts[0] in conversations and parts[1:] == ["messages"]:
            messages = self.data["messages"].get(parts[0]) or self.part2["messages"].get(parts[0], [])
            return httpx.Response(200, json={"messages": messages, "next_cursor": None})
        return httpx.Response(404, json=NOT_RECORDED)

    def render(self, response_id: str, body: dict[str, Any]) -> httpx.Response:
        """Fills a recorded response as the server would for conversation 101 (Juan, Ana)."""
        content = next(r["content"] for r in self.part2["canned"]["responses"] if r["id"] == response_id)
        values = {"customer_first_name": "Juan", "agent_first_name": "Ana", **body.get("variables", {})}
        missing = [name for name in re.findall(r"\{\{(\w+)\}\}", content) if not values.get(name)]
        if missing:
            error = {
                "code": "missing_variables",
                "message": "fill in " + ", ".join(missing),
                "details": {"missing": missing},
            }
            return _json({"error": error}, 422)
        text = re.sub(r"\{\{(\w+)(?:\|[^}]*)?\}\}", lambda m: values.get(m.group(1), ""), content)
        return _json({"text": text, "variables": values})

    def part2_answer(self, request: httpx.Request) -> httpx.Response | None:
        """Canned responses (with their ETag), customers, links, templates, SLA, notifications."""
        data, path, params = self.part2, request.url.path, request.url.params
        if path == "/api/v1/canned-responses":
            etag = data["canned_etag"]
            if request.headers.get("If-None-Match") == etag:
                return httpx.Response(304, headers={"ETag": etag})
            return httpx.Response(200, json=data["canned"], headers={"ETag": etag})
        if path.startswith("/api/v1/canned-responses/") and path.endswith("/render"):
            return self.render(path.split("/")[-2], json.loads(request.content))
        if path == "/api/v1/customers":
            ids = data["search"].get(params.get("q", "").lower(), [])
            return _json({"customers": [data["customers"][i] for i in ids], "next_cursor": None})
        if path.startswith("/api/v1/customers/"):
            parts = path.removeprefix("/api/v1/customers/").split("/")
            table = {
                "context": data["contexts"],
                "links": data["links"],
                "link-suggestions": data["suggestions"],
            }
            if len(parts) == 1:
                found = data["customers"].get(parts[0])
                return _json(found) if found else _json(NOT_RECORDED, 404)
            if parts[1] in table:
                found = table[parts[1]].get(parts[0])
                key = {"context": None, "links": "links", "link-suggestions": "suggestions"}[parts[1]]
                if found is None:
                    return _json(NOT_RECORDED, 404) if key is None else _json({key: [], "next_cursor": None})
                return _json(found if key is None else {key: found, "next_cursor": None})
        if path == "/api/v1/whatsapp-templates":
            return _json({"templates": data["templates"], "next_cursor": None})
        if path == "/api/v1/sla/policies":
            return _json({"policies": data["sla_policies"], "next_cursor": None})
        if path == "/api/v1/sla/report":
            return _json({"reports": data["sla_reports"][params.get("days", "7")], "next_cursor": None})
        if path == "/api/v1/notifications":
            return _json(data["notifications"])
        if path.startswith("/api/v1/media/"):
            found = data["media"].get(path.rsplit("/", 1)[-1])
            return _json(found) if found else _json(NOT_RECORDED, 404)
        return None


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


def recorded_app(
    data_dir: Path, drafts: dict[str, str] | None = None, role: str = "agent", escalated: bool = False
) -> MaxApp:
    store = DraftStore(data_dir, SERVER, "7")
    for conversation_id, text in (drafts or {}).items():
        store.set(conversation_id, text)
    store.save()
    app = MaxApp(
        SERVER,
        "max_recorded",
        transport=httpx.MockTransport(RecordedApi(role, escalated)),
        connector=quiet_connector,
        now=lambda: FIXED_NOW,
        tz=UTC,
        data_dir=data_dir,
    )
    app.animation_level = "none"  # the tab underline slides when a count changes: snapshot the result
    return app
