"""The sandbox's control API, over HTTP against a running MAX: what someone trying MAX with
``max sandbox run`` does by hand (a customer writes, a reply is delivered and read, a template
is approved or rejected)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from max_server.channels.whatsapp.sandbox import Sandbox
from max_server.jobs.worker import Worker
from tests.conftest import People, bearer
from tests.support.live import LiveServer
from tests.support.sandbox_fixtures import sandbox_fixture, sandbox_graph_url  # noqa: F401

WA = "5215512345678"


@pytest.fixture
def admin(people: People) -> str:
    return people.user("admin")[1]


def control(sandbox: Sandbox, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{sandbox.url}/_sandbox/{path}", json=body, timeout=30)


def thread(live: LiveServer, token: str, conversation_id: str) -> list[dict[str, Any]]:
    return list(
        httpx.get(
            f"{live.url}/api/v1/conversations/{conversation_id}/messages", headers=bearer(token)
        ).json()["messages"]
    )


def test_a_customer_writes_a_reply_is_delivered_then_read(
    live: LiveServer, sandbox: Sandbox, worker: Worker, admin: str
) -> None:
    wrote = control(
        sandbox, "customer-message", {"to_url": live.url, "from": WA, "name": "Ana", "text": "hola"}
    )
    assert (wrote.status_code, wrote.json()["status"]) == (200, 200)
    [conversation] = httpx.get(live.url + "/api/v1/conversations", headers=bearer(admin)).json()[
        "conversations"
    ]
    assert (
        control(sandbox, "status", {"to_url": live.url, "status": "read"}).status_code == 404
    )  # nothing sent
    for text in ("primera", "segunda"):
        httpx.post(
            f"{live.url}/api/v1/conversations/{conversation['id']}/messages",
            json={"text": text},
            headers=bearer(admin),
        )
    worker.drain()
    sent = httpx.get(f"{sandbox.url}/_sandbox/sent").json()
    assert [(s["to"], s["type"], s["text"]) for s in sent] == [
        ("+" + WA, "text", "primera"),
        ("+" + WA, "text", "segunda"),
    ]
    # Without a wamid: the latest message MAX sent.
    latest = control(sandbox, "status", {"to_url": live.url, "status": "read"})
    assert latest.status_code == 200, latest.text
    assert (latest.json()["wamid"], latest.json()["status"]) == (sent[1]["wamid"], 200)
    first = control(sandbox, "status", {"to_url": live.url, "status": "delivered", "wamid": sent[0]["wamid"]})
    assert first.json()["status"] == 200
    assert [m["delivery_status"] for m in thread(live, admin, conversation["id"])] == [
        "delivered",
        "delivered",
        "read",
    ]
    failed = control(
        sandbox,
        "status",
        {"to_url": live.url, "status": "failed", "wamid": sent[0]["wamid"], "error_code": 131026},
    )
    assert failed.json()["status"] == 200
    assert thread(live, admin, conversation["id"])[1]["delivery_status"] == "delivered"  # never backwards
    refused = [
        control(sandbox, "status", {"to_url": live.url, "status": "seen"}),
        control(sandbox, "status", {"status": "read"}),
        control(sandbox, "status", {"to_url": live.url, "status": "read", "wamid": "wamid.nope"}),
        control(sandbox, "status", {"to_url": "http://127.0.0.1:9", "status": "read"}),
    ]
    assert [(r.status_code, r.json()["error"]["code"]) for r in refused] == [
        (400, "validation_error"),
        (400, "validation_error"),
        (404, "not_found"),
        (502, "unreachable"),
    ]


def test_a_submitted_template_is_approved_or_rejected(live: LiveServer, sandbox: Sandbox, admin: str) -> None:
    from tests.templates.conftest import order_shipped

    ids = {}
    for language in ("es", "en"):
        created = httpx.post(
            f"{live.url}/api/v1/whatsapp-templates", json=order_shipped(language), headers=bearer(admin)
        )
        assert created.status_code == 201, created.text
        ids[language] = created.json()["id"]
    approved = control(
        sandbox,
        "template-status",
        {"to_url": live.url, "name": "order_shipped", "language": "es", "event": "approved"},
    )
    assert approved.status_code == 200, approved.text
    assert (approved.json()["event"], approved.json()["status"]) == ("APPROVED", 200)
    [en] = [t for t in sandbox.templates() if t["language"] == "en"]
    rejected = control(
        sandbox,
        "template-status",
        {"to_url": live.url, "template_id": en["id"], "event": "REJECTED", "reason": "PROMOTIONAL"},
    )
    assert rejected.json()["status"] == 200
    shown = {
        language: httpx.get(
            f"{live.url}/api/v1/whatsapp-templates/{ids[language]}", headers=bearer(admin)
        ).json()
        for language in ids
    }
    assert (shown["es"]["status"], shown["en"]["status"]) == ("APPROVED", "REJECTED")
    assert "PROMOTIONAL" in (shown["en"]["rejection_reason"] or "")
    assert sorted(t["status"] for t in sandbox.templates()) == ["APPROVED", "REJECTED"]
    unknown = control(
        sandbox,
        "template-status",
        {"to_url": live.url, "name": "nope", "language": "es", "event": "APPROVED"},
    )
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")
    bad = control(sandbox, "template-status", {"to_url": live.url, "name": "order_shipped", "event": "MAYBE"})
    assert bad.status_code == 400
