"""Every payload in ``../shared/fixtures/whatsapp-pywa/split/`` (Meta's shapes, collected by the
pywa project) posted signed to a running MAX and read back through the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from max_server.db import Database
from max_server.models import Conversation, InboundEvent, PendingStatus
from tests.channels.conftest import WhatsApp
from tests.conftest import People, bearer
from tests.support import factories
from tests.support.live import LiveServer


@pytest.fixture
def admin(people: People) -> str:
    return people.user("admin")[1]


def api(live: LiveServer, token: str, path: str, **params: Any) -> Any:
    response = httpx.get(live.url + path, params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "whatsapp-pywa" / "split"
CAPTIONED = ("image", "video", "document", "audio", "sticker")


def visible_text(message: dict[str, Any]) -> str | None:
    """The text an agent must read for a fixture message, where the message carries one
    (locations, contacts and orders get a summary: test_every_message_type_is_stored_and_readable)."""
    kind = message["type"]
    body = message.get(kind)
    if not isinstance(body, dict):
        return None
    if kind == "text":
        return str(body["body"])
    if kind in CAPTIONED:
        return body.get("caption")
    if kind == "interactive":
        return str(body[body["type"]]["title"])
    if kind == "button":
        return str(body["text"])
    if kind == "reaction":
        return body.get("emoji") or None
    if kind == "system":
        return str(body["body"])
    return None


def expected_flags(message: dict[str, Any]) -> set[str]:
    context = message.get("context") or {}
    flags = set()
    if context.get("forwarded"):
        flags.add("forwarded")
    if context.get("frequently_forwarded"):
        flags |= {"forwarded", "frequently_forwarded"}
    if message["type"] == "audio" and message["audio"].get("voice"):
        flags.add("voice")
    if message["type"] == "reaction" and not message["reaction"].get("emoji"):
        flags.add("reaction_removed")
    if message.get("referral"):
        flags.add("referral")
    if message.get("errors"):
        flags.add("has_errors")
    return flags


def every_message(live: LiveServer, token: str) -> dict[str, dict[str, Any]]:
    """Every message of every conversation, read through the API (all pages), by channel id."""
    found: dict[str, dict[str, Any]] = {}
    for conversation in api(live, token, "/api/v1/conversations", status="all", limit=500)["conversations"]:
        cursor = None
        while True:
            page = api(
                live,
                token,
                f"/api/v1/conversations/{conversation['id']}/messages",
                limit=10,
                **({"cursor": cursor} if cursor else {}),
            )
            found |= {m["channel_message_id"]: m for m in page["messages"] if m["channel_message_id"]}
            cursor = page["next_cursor"]
            if not cursor:
                break
    return found


def test_every_conformance_fixture_is_accepted_and_kept(
    live: LiveServer, whatsapp: WhatsApp, admin: str, db: Database
) -> None:
    """Meta-shaped payloads from the pywa project (../shared, present in CI), each posted signed:
    every message is stored with its type, text and flags (read back through the API), every
    status is applied (its message exists) or waits for its message, every template change kept.
    The fixtures reuse a few wamids, so each fixture's ids get its name appended."""
    files = sorted(CONFORMANCE.glob("*.json")) if CONFORMANCE.is_dir() else []
    if not files:
        pytest.skip("../shared/fixtures/whatsapp-pywa/split is not present in this checkout")
    messages: dict[str, tuple[str, dict[str, Any]]] = {}
    statuses: dict[str, tuple[str, dict[str, Any]]] = {}
    templates: list[str] = []
    bodies = []
    for path in files:
        body = json.loads(path.read_bytes())
        for change in (c for entry in body["entry"] for c in entry["changes"]):
            value = change["value"]
            for item in value.get("messages", []):
                item["id"] = f"{item['id']}.{path.stem}"
                messages[item["id"]] = (path.name, item)
            for item in value.get("statuses", []):
                item["id"] = f"{item['id']}.{path.stem}"
                statuses[item["id"]] = (path.name, item)
            if change["field"] != "messages":
                templates.append(change["field"])
        bodies.append((path.name, body))
    assert len(messages) >= 25 and len(statuses) >= 6 and len(templates) >= 4
    # Our own earlier sends, for every status but one (that one must wait for its message).
    waiting_for = sorted(statuses)[0]
    whatsapp.text("hola", wa_id="5215500000042")  # the conversation our sends went to
    with db.session(write=False) as session:
        conversation = session.exec(select(Conversation)).one()
    for wamid in sorted(statuses)[1:]:
        factories.message(
            db,
            conversation,
            "enviado",
            direction="outbound",
            sender_type="agent",
            channel_message_id=wamid,
            delivery_status="sending",
        )
    for name, body in bodies:
        response = whatsapp.post(body)
        assert response.status_code == 200, (name, response.text)
        received = response.json()["received"]
        value = body["entry"][0]["changes"][0]["value"]
        # Value-level errors are kept as an unknown piece; no message or status is.
        assert received.get("kept_unknown", 0) == (1 if value.get("errors") else 0), (name, received)
        assert "kept_failed" not in received, (name, received)
        assert received.get("stored", 0) == len(value.get("messages", [])), (name, received)
    shown = every_message(live, admin)
    for wamid, (name, message) in messages.items():
        got = shown[wamid]
        assert got["type"] == message["type"], name
        assert got["direction"] == "inbound", name
        assert got["sender_type"] == ("system" if message["type"] == "system" else "customer"), name
        if visible_text(message) is not None:
            assert got["content_text"] == visible_text(message), name
        assert set(got["flags"]) - {"rate_limited"} == expected_flags(message), (name, got["flags"])
    for wamid, (name, status) in statuses.items():
        if wamid == waiting_for:
            continue
        got = shown[wamid]
        assert got["delivery_status"] == status["status"], name
        if status["status"] == "failed":
            assert got["error"]["code"] == status["errors"][0]["code"], name
    with db.session(write=False) as session:
        waiting = [s.channel_message_id for s in session.exec(select(PendingStatus))]
        kept = sorted(e.kind for e in session.exec(select(InboundEvent)) if e.kind in templates)
    assert waiting == [waiting_for]
    assert kept == sorted(templates)
