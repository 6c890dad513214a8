"""Inbound WhatsApp webhooks over HTTP to a running app, read back through the API."""

from __future__ import annotations

import logging
import socket
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import func, select

from max_server.channels.whatsapp import payloads as p
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.models import Conversation, Customer, CustomerIdentity, InboundEvent, Message
from tests.channels.conftest import APP_SECRET, PHONE_NUMBER_ID, VERIFY_TOKEN, WhatsApp
from tests.conftest import People, bearer
from tests.support.live import LiveServer

WA = "5215512345678"


@pytest.fixture
def admin(people: People) -> str:
    return people.user("admin")[1]


def api(live: LiveServer, token: str, path: str, **params: Any) -> Any:
    response = httpx.get(live.url + path, params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


def only_conversation(live: LiveServer, token: str) -> dict[str, Any]:
    conversations = api(live, token, "/api/v1/conversations", status="all")["conversations"]
    assert len(conversations) == 1, conversations
    return conversations[0]


def thread(live: LiveServer, token: str, conversation_id: str) -> list[dict[str, Any]]:
    return api(live, token, f"/api/v1/conversations/{conversation_id}/messages")["messages"]


def count(db: Database, model: type) -> int:
    with db.session(write=False) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def test_handshake(live: LiveServer) -> None:
    ok = httpx.get(
        live.url + "/webhooks/whatsapp",
        params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
    )
    assert (ok.status_code, ok.text) == (200, "1158201444")
    assert ok.headers["content-type"].startswith("text/plain")
    wrong = httpx.get(
        live.url + "/webhooks/whatsapp",
        params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"},
    )
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "verify_token_mismatch"


def test_a_text_opens_a_conversation_for_a_new_customer(
    live: LiveServer, whatsapp: WhatsApp, admin: str, clock: FrozenClock
) -> None:
    sent = clock.now() - timedelta(seconds=30)
    wamid = whatsapp.text("hola, necesito ayuda", ts=sent.timestamp())
    conversation = only_conversation(live, admin)
    assert conversation["status"] == "queued"
    assert conversation["customer"]["name"] == "Juan López"
    assert conversation["channel"] == "whatsapp"
    assert conversation["number"] == 1
    assert conversation["first_message_at"] == sent.isoformat().replace("+00:00", "Z")
    assert conversation["last_customer_message_at"] == conversation["first_message_at"]
    assert conversation["window_open"] is True
    [message] = thread(live, admin, conversation["id"])
    assert (message["content_text"], message["direction"], message["sender_type"], message["type"]) == (
        "hola, necesito ayuda",
        "inbound",
        "customer",
        "text",
    )
    assert message["channel_message_id"] == wamid


def test_non_ascii_signed_as_meta_does_is_stored_exactly(
    live: LiveServer, whatsapp: WhatsApp, admin: str, db: Database, clock: FrozenClock
) -> None:
    text = "¡Hola! ¿Cómo están? Añoro el café ☕ — 日本語 👍🏽"
    payload = p.text_webhook(
        PHONE_NUMBER_ID, WA, p.new_wamid(), text, name="Zoë Müller", ts=clock.now().timestamp()
    )
    raw = p.encode(payload)
    assert b"\\u00a1Hola" in raw and "¡".encode() not in raw  # escaped as Meta sends it
    tampered = raw.replace(b"Hola", b"Holb", 1)
    refused = whatsapp.post_raw(tampered, signature=p.sign(raw, "test-app-secret"))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_signature"
    assert count(db, Message) == 0 and count(db, Customer) == 0
    assert whatsapp.post_raw(raw).status_code == 200
    conversation = only_conversation(live, admin)
    assert conversation["customer"]["name"] == "Zoë Müller"
    assert thread(live, admin, conversation["id"])[0]["content_text"] == text


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "sha1=abc", ""])
def test_unsigned_or_wrongly_signed_bodies_store_nothing(
    whatsapp: WhatsApp, db: Database, signature: str | None
) -> None:
    raw = p.encode(p.text_webhook(PHONE_NUMBER_ID, WA, p.new_wamid(), "hola"))
    headers = {} if signature is None else {"X-Hub-Signature-256": signature}
    response = whatsapp.http.post(
        whatsapp.url, content=raw, headers={"Content-Type": "application/json", **headers}
    )
    assert response.status_code == 401
    assert count(db, Message) == 0 and count(db, InboundEvent) == 0


def test_oversize_bodies_get_413_without_being_read(whatsapp: WhatsApp, db: Database) -> None:
    big = b'{"entry": [' + b" " * (3 * 1024 * 1024) + b"]}"
    declared = whatsapp.post_raw(big)
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "payload_too_large"

    def chunks():  # no Content-Length: the server counts as it reads
        for _ in range(40):
            yield b" " * 100_000

    streamed = whatsapp.http.post(
        whatsapp.url, content=chunks(), headers={"X-Hub-Signature-256": "sha256=00"}
    )
    assert streamed.status_code == 413
    assert count(db, Message) == 0


def test_a_client_gone_mid_body_is_one_info_line_and_nothing_stored(
    live: LiveServer, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    raw = p.encode(p.text_webhook(PHONE_NUMBER_ID, WA, p.new_wamid(), "hola"))
    head = (
        f"POST /webhooks/whatsapp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"X-Hub-Signature-256: {p.sign(raw, APP_SECRET)}\r\nContent-Length: {len(raw)}\r\n\r\n"
    ).encode()
    caplog.set_level(logging.INFO, logger="max")
    with socket.create_connection(("127.0.0.1", live.port)) as sock:
        sock.sendall(head + raw[: len(raw) // 2])  # then hang up, as a timed-out sender does
    deadline = time.monotonic() + 10
    while not any("disconnected" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, "the server never noticed the disconnect"
        time.sleep(0.05)
    time.sleep(0.2)  # anything else it would log about this request is out by now
    mine = [r for r in caplog.records if r.name != "max.access"]
    assert [(r.levelno, "disconnected" in r.getMessage()) for r in mine] == [(logging.INFO, True)]
    assert all(r.exc_info is None for r in caplog.records)
    assert count(db, Message) == 0 and count(db, Customer) == 0 and count(db, InboundEvent) == 0
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": p.sign(raw, APP_SECRET)}
    again = httpx.post(live.url + "/webhooks/whatsapp", content=raw, headers=headers)
    assert again.status_code == 200 and count(db, Message) == 1  # Meta's retry is stored whole


def test_signed_malformed_json_is_a_clear_400(whatsapp: WhatsApp, db: Database) -> None:
    response = whatsapp.post_raw(b'{"entry": [')
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_json")


def test_unknown_fields_and_odd_shapes_are_kept_not_dropped(whatsapp: WhatsApp, db: Database) -> None:
    payload = p.envelope(
        PHONE_NUMBER_ID, [{"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}]
    )
    assert whatsapp.post(payload).status_code == 200
    assert whatsapp.post({"object": "whatsapp_business_account", "entry": "nonsense"}).status_code == 200
    with db.session(write=False) as session:
        kinds = sorted(e.kind for e in session.exec(select(InboundEvent)))
    assert kinds == ["field:account_update", "unrecognised_body"]


def build_every_type(ts: float) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(message, what the API must show) for every type MAX understands, plus an unknown one."""
    sha = p.sha256_b64(b"x")
    first = p.new_wamid()
    return [
        (p.text(WA, first, "primero", ts), {"type": "text", "content_text": "primero"}),
        (
            p.image(WA, p.new_wamid(), "m1", "image/jpeg", sha, ts, caption="mi foto"),
            {"type": "image", "content_text": "mi foto", "media": ("image", "image/jpeg", None)},
        ),
        (
            p.video(WA, p.new_wamid(), "m2", "video/mp4", sha, ts, context=p.context(forwarded=True)),
            {"type": "video", "flags": ["forwarded"], "media": ("video", "video/mp4", None)},
        ),
        (
            p.audio(WA, p.new_wamid(), "m3", "audio/ogg; codecs=opus", sha, ts, voice=True),
            {"type": "audio", "flags": ["voice"], "media": ("audio", "audio/ogg; codecs=opus", None)},
        ),
        (
            p.document(WA, p.new_wamid(), "m4", "application/pdf", sha, ts, filename="factura.pdf"),
            {"type": "document", "media": ("document", "application/pdf", "factura.pdf")},
        ),
        (
            p.sticker(WA, p.new_wamid(), "m5", "image/webp", sha, ts, animated=True),
            {"type": "sticker", "media": ("sticker", "image/webp", None)},
        ),
        (
            p.location(WA, p.new_wamid(), 19.43, -99.13, ts, name="Zócalo", address="CDMX"),
            {"type": "location", "content_text": "Zócalo · CDMX · 19.43, -99.13"},
        ),
        (
            p.contacts_message(WA, p.new_wamid(), [p.contact_card("Ana Pérez", "+5215500000000")], ts),
            {"type": "contacts", "content_text": "Ana Pérez"},
        ),
        (
            p.interactive_button_reply(WA, p.new_wamid(), "btn_yes", "Sí", ts),
            {"type": "interactive", "content_text": "Sí"},
        ),
        (
            p.interactive_list_reply(WA, p.new_wamid(), "row_2", "Envío exprés", description="24 h", ts=ts),
            {"type": "interactive", "content_text": "Envío exprés"},
        ),
        (
            p.button(WA, p.new_wamid(), "STOP_PROMOS", "Detener promociones", ts),
            {"type": "button", "content_text": "Detener promociones"},
        ),
        (p.reaction(WA, p.new_wamid(), first, "👍", ts), {"type": "reaction", "content_text": "👍"}),
        (p.reaction(WA, p.new_wamid(), first, "", ts), {"type": "reaction", "flags": ["reaction_removed"]}),
        (
            p.order(
                WA,
                p.new_wamid(),
                "catalog_1",
                [p.order_item("sku-1", 2, 99.5, "MXN")],
                text="para hoy",
                ts=ts,
            ),
            {"type": "order", "content_text": "Order: 1 item(s) — para hoy"},
        ),
        (
            p.text(WA, p.new_wamid(), "respuesta", ts, context=p.context(reply_to=first, sender=WA)),
            {"type": "text", "reply_to": True},
        ),
        (p.unsupported(WA, p.new_wamid(), ts), {"type": "unsupported", "flags": ["has_errors"]}),
        (
            p.unknown_type(WA, p.new_wamid(), "hologram", {"shape": "cube"}, ts),
            {"type": "hologram", "raw": "hologram"},
        ),
    ]


def test_every_message_type_is_stored_and_readable(
    live: LiveServer, whatsapp: WhatsApp, admin: str, clock: FrozenClock
) -> None:
    cases = build_every_type(clock.now().timestamp())
    for message, _ in cases:
        whatsapp.message(message)
    conversation = only_conversation(live, admin)
    shown = thread(live, admin, conversation["id"])
    assert len(shown) == len(cases)
    by_wamid = {m["channel_message_id"]: m for m in shown}
    for message, expected in cases:
        got = by_wamid[message["id"]]
        assert got["type"] == expected["type"]
        if "content_text" in expected:
            assert got["content_text"] == expected["content_text"], got
        for flag in expected.get("flags", []):
            assert flag in got["flags"], (got["type"], got["flags"])
        if "media" in expected:
            [media] = got["media"]
            assert (media["media_type"], media["mime_type"], media["filename"]) == expected["media"]
            assert media["status"] == "pending"
        if expected.get("raw"):
            assert got["payload"][expected["raw"]] == {"shape": "cube"}
        if expected.get("reply_to"):
            assert got["payload"]["context"]["id"] == cases[0][0]["id"]


def test_redelivery_creates_nothing_twice(
    live: LiveServer, whatsapp: WhatsApp, admin: str, db: Database
) -> None:
    wamid = p.new_wamid()
    for _ in range(3):
        whatsapp.text("hola", wamid=wamid)
    assert count(db, Message) == 1
    assert count(db, Conversation) == 1


def test_last_customer_message_at_never_moves_backwards(
    live: LiveServer, whatsapp: WhatsApp, admin: str, clock: FrozenClock
) -> None:
    now = clock.now()
    whatsapp.text("nuevo", ts=(now - timedelta(minutes=1)).timestamp())
    whatsapp.text("viejo (reintento de Meta)", ts=(now - timedelta(hours=3)).timestamp())
    conversation = only_conversation(live, admin)
    assert conversation["last_customer_message_at"] == (now - timedelta(minutes=1)).isoformat().replace(
        "+00:00", "Z"
    )
    whatsapp.text("del futuro", ts=(now + timedelta(hours=5)).timestamp())
    # A customer clock ahead of ours is clamped to arrival time.
    assert only_conversation(live, admin)["last_customer_message_at"] == now.isoformat().replace(
        "+00:00", "Z"
    )


def test_a_number_change_moves_the_identity(
    live: LiveServer, whatsapp: WhatsApp, admin: str, db: Database, clock: FrozenClock
) -> None:
    ts = clock.now().timestamp()
    whatsapp.text("hola", wa_id="5215500000001", ts=ts)
    whatsapp.message(
        p.system_number_change("5215500000001", "5215599999999", p.new_wamid(), ts), wa_id="5215500000001"
    )
    whatsapp.text("ya con número nuevo", wa_id="5215599999999", ts=ts)
    with db.session(write=False) as session:
        assert count(db, Customer) == 1
        identities = [i.external_id for i in session.exec(select(CustomerIdentity))]
        customer = session.exec(select(Customer)).one()
    assert identities == ["5215599999999"]
    assert customer.phone_e164 == "+5215599999999"
    conversation = only_conversation(live, admin)
    types = [(m["type"], m["sender_type"]) for m in thread(live, admin, conversation["id"])]
    assert types == [("text", "customer"), ("system", "system"), ("text", "customer")]


def test_a_hidden_number_is_known_by_its_business_scoped_id(
    whatsapp: WhatsApp, db: Database, clock: FrozenClock
) -> None:
    ts = clock.now().timestamp()
    hidden = p.from_user(p.text(WA, p.new_wamid(), "sin número", ts), "US.1349120865", hide_number=True)
    whatsapp.message(hidden, wa_id=None, user_id="US.1349120865")  # type: ignore[arg-type]
    whatsapp.message(p.text(WA, p.new_wamid(), "con número", ts), wa_id=WA, user_id="US.1349120865")
    with db.session(write=False) as session:
        keys = sorted(i.external_id for i in session.exec(select(CustomerIdentity)))
    assert count(db, Customer) == 1
    assert keys == sorted(["US.1349120865", WA])
    assert count(db, Conversation) == 1


def test_nul_characters_are_stored_visibly_not_refused(
    live: LiveServer, whatsapp: WhatsApp, admin: str, clock: FrozenClock
) -> None:
    """PostgreSQL refuses NUL in text and JSON; a webhook carrying one must still be stored."""
    sha = p.sha256_b64(b"x")
    message = p.document(
        WA,
        p.new_wamid(),
        "m9",
        "application/pdf",
        sha,
        clock.now().timestamp(),
        filename="a\x00b.pdf",
        caption="hola\x00mundo",
    )
    whatsapp.message(message, name="Nul\x00Name")
    conversation = only_conversation(live, admin)
    [stored] = thread(live, admin, conversation["id"])
    assert stored["content_text"] == "hola\ufffdmundo"
    assert stored["media"][0]["filename"] == "a\ufffdb.pdf"
    assert conversation["customer"]["name"] == "Nul\ufffdName"
