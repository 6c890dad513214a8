"""The Chat App channel: signed inbound messages, attachments, and signed ordered replies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import select
from standardwebhooks.webhooks import Webhook

from max_server.app import create_app
from max_server.channels.chat_app import signed_headers
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs.worker import Worker
from max_server.models import Customer, CustomerIdentity, MediaFile, Message
from max_server.settings import Settings
from tests.channels.conftest import CHAT_SECRET
from tests.conftest import People, bearer, make_settings
from tests.support.live import LiveServer
from tests.support.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def settings(db: Database, tmp_path: Path, receiver: Receiver) -> Settings:
    return make_settings(
        db,
        tmp_path,
        chat_app={"secret": CHAT_SECRET, "callback_url": receiver.url + "/max/replies"},
        webhooks={"allow_private_networks": True},
    )


@pytest.fixture
def app(settings: Settings, db: Database) -> FastAPI:
    return create_app(settings, db=db, background=False)


def post(
    live: LiveServer,
    body: dict[str, Any],
    *,
    secret: str = CHAT_SECRET,
    raw: bytes | None = None,
    now: float | None = None,
) -> httpx.Response:
    data = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(
        live.url + "/channels/chat-app/messages", content=data, headers=signed_headers(secret, data, now=now)
    )


def customer_message(message_id: str = "m1", text: str = "hola desde la app", **extra: Any) -> dict[str, Any]:
    return {
        "id": message_id,
        "customer": {
            "id": "cust_abc123",
            "name": "Juan López",
            "email": "Juan@Example.com",
            "phone": "+52 55 1234 5678",
        },
        "text": text,
        **extra,
    }


def test_a_signed_message_opens_a_conversation(
    live: LiveServer, db: Database, people: People, clock: FrozenClock
) -> None:
    _, admin = people.user("admin")
    response = post(live, customer_message())
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"
    assert post(live, customer_message()).json() == {"status": "duplicate"}
    [conversation] = httpx.get(live.url + "/api/v1/conversations", headers=bearer(admin)).json()[
        "conversations"
    ]
    assert (conversation["channel"], conversation["customer"]["name"], conversation["window_open"]) == (
        "chat_app",
        "Juan López",
        True,
    )
    with db.session(write=False) as session:
        customer = session.exec(select(Customer)).one()
        identity = session.exec(select(CustomerIdentity)).one()
    assert (customer.email, customer.phone_e164) == ("juan@example.com", "+525512345678")
    assert (identity.channel, identity.external_id) == ("chat_app", "cust_abc123")


@pytest.mark.parametrize("problem", ["wrong secret", "stale", "tampered", "unsigned"])
def test_bad_signatures_are_refused_and_store_nothing(
    live: LiveServer, db: Database, clock: FrozenClock, problem: str
) -> None:
    body = json.dumps(customer_message()).encode()
    if problem == "wrong secret":
        response = post(live, {}, raw=body, secret="whsec_" + "A" * 32)
    elif problem == "stale":
        response = post(live, {}, raw=body, now=clock.now().timestamp() - 600)
    elif problem == "tampered":
        headers = signed_headers(CHAT_SECRET, body)
        response = httpx.post(
            live.url + "/channels/chat-app/messages", content=body.replace(b"hola", b"hols"), headers=headers
        )
    else:
        response = httpx.post(live.url + "/channels/chat-app/messages", content=body)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    with db.session(write=False) as session:
        assert session.exec(select(Message)).first() is None


def test_invalid_bodies_get_422_naming_the_field(live: LiveServer) -> None:
    response = post(live, {"id": "x", "customer": {"name": "no id"}})
    assert response.status_code == 422
    assert "customer.id" in response.json()["error"]["message"]


def test_attachments_become_pending_media(live: LiveServer, db: Database) -> None:
    body = customer_message(
        "m2",
        text="mira",
        attachments=[
            {"url": "https://cdn.example.com/a/foto.jpg", "mime_type": "image/jpeg", "filename": "foto.jpg"},
            {"url": "https://cdn.example.com/a/contrato.pdf", "mime_type": "application/pdf"},
        ],
    )
    assert post(live, body).status_code == 200
    with db.session(write=False) as session:
        media = list(session.exec(select(MediaFile).order_by(MediaFile.id)))  # type: ignore[arg-type]
    assert [(m.media_type, m.source_url, m.status) for m in media] == [
        ("image", "https://cdn.example.com/a/foto.jpg", "pending"),
        ("document", "https://cdn.example.com/a/contrato.pdf", "pending"),
    ]


def test_replies_are_signed_ordered_and_retried(
    live: LiveServer, receiver: Receiver, worker: Worker, db: Database, people: People, clock: FrozenClock
) -> None:
    _, admin = people.user("admin")
    post(live, customer_message())
    [conversation] = httpx.get(live.url + "/api/v1/conversations", headers=bearer(admin)).json()[
        "conversations"
    ]
    receiver.answer_next(503)
    ids = []
    for text in ("uno", "dos"):
        sent = httpx.post(
            f"{live.url}/api/v1/conversations/{conversation['id']}/messages",
            json={"text": text},
            headers=bearer(admin),
        )
        ids.append(sent.json()["id"])
    worker.drain()
    assert len(receiver.received) == 1  # "dos" waits behind "uno", which failed with 503
    clock.advance(minutes=20)
    worker.drain()
    got = receiver.wait_for(3)
    bodies = [json.loads(r.body) for r in got]
    assert [b["text"] for b in bodies] == ["uno", "uno", "dos"]
    assert got[0].headers["idempotency-key"] == got[1].headers["idempotency-key"] == f"max-message-{ids[0]}"
    assert bodies[0]["customer_id"] == "cust_abc123"
    # A receiver using the standardwebhooks package computes the same signature (its verify()
    # reads the wall clock, so the signature is checked with sign() at the sent timestamp).
    verifier = Webhook(CHAT_SECRET)
    stamps = []
    for request in got:
        sent_at = datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), UTC)
        expected = verifier.sign(request.headers["webhook-id"], sent_at, request.body.decode())
        assert request.headers["webhook-signature"] == expected
        stamps.append(sent_at)
    # Each attempt is stamped when it is made (a retry is not a replay of the old timestamp).
    assert stamps == [clock.now() - timedelta(minutes=20), clock.now(), clock.now()]
    with db.session(write=False) as session:
        states = [session.get(Message, int(i)).delivery_status for i in ids]  # type: ignore[union-attr]
    assert states == ["sent", "sent"]


def test_a_callback_on_a_private_address_is_refused_by_default(
    live: LiveServer, db: Database, tmp_path: Path, receiver: Receiver, people: People, clock: FrozenClock
) -> None:
    from max_server.jobs import registry

    strict = make_settings(
        db, tmp_path, chat_app={"secret": CHAT_SECRET, "callback_url": receiver.url + "/x"}
    )
    _, admin = people.user("admin")
    post(live, customer_message())
    [conversation] = httpx.get(live.url + "/api/v1/conversations", headers=bearer(admin)).json()[
        "conversations"
    ]
    sent = httpx.post(
        f"{live.url}/api/v1/conversations/{conversation['id']}/messages",
        json={"text": "hola"},
        headers=bearer(admin),
    ).json()
    registry.load_builtin_handlers()
    Worker(db, strict, concurrency=1, now=lambda _: clock.now(), name="strict").drain()  # type: ignore[arg-type,return-value]
    with db.session(write=False) as session:
        failed = session.get(Message, int(sent["id"]))
    assert failed is not None and failed.delivery_status == "failed"
    assert failed.error is not None and "private" in failed.error["title"]
    assert receiver.received == []


def test_a_worker_lost_mid_call_resends_with_the_same_idempotency_key(
    live: LiveServer, receiver: Receiver, worker: Worker, db: Database, people: People, clock: FrozenClock
) -> None:
    """Unlike WhatsApp, the Chat App dedupes on Idempotency-Key: a send found ``sending`` (its
    worker died mid-call) is posted again instead of ending ``unknown``."""
    from max_server.jobs import queue
    from max_server.services import outbound

    _, admin = people.user("admin")
    post(live, customer_message())
    [conversation] = httpx.get(live.url + "/api/v1/conversations", headers=bearer(admin)).json()[
        "conversations"
    ]
    sent = httpx.post(
        f"{live.url}/api/v1/conversations/{conversation['id']}/messages",
        json={"text": "¿sigues ahí?"},
        headers=bearer(admin),
    ).json()
    with db.session() as session:  # a worker claims the send, marks it sending, and dies
        [claimed] = queue.claim(session, "dead-worker", clock.now(), 30)
        session.commit()
    assert claimed.kind == "chat_app.send"
    assert outbound.begin(db, int(sent["id"])) is not None
    clock.advance(seconds=31)  # its lease runs out; another worker takes the job over
    worker.drain()
    [delivered] = receiver.wait_for(1)
    assert delivered.headers["idempotency-key"] == f"max-message-{sent['id']}"
    assert json.loads(delivered.body)["text"] == "¿sigues ahí?"
    with db.session(write=False) as session:
        message = session.get(Message, int(sent["id"]))
    assert message is not None
    assert (message.delivery_status, message.error) == ("sent", None)
