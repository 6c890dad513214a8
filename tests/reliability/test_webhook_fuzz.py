"""Hostile WhatsApp webhooks: whatever a signed body holds (random shapes, huge strings, deep
nesting, wrong types, NaN, lone surrogates), the parser never raises, every item it lets
through fits the columns it is stored in, and the endpoint answers 200 or an error envelope,
never 500, on SQLite and PostgreSQL. Bodies over the limit get 413 without being read whole.

``MAX_RELIABILITY_FUZZ_EXAMPLES`` (default 120) bounds the endpoint's examples per database.
"""

from __future__ import annotations

import json
import select
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from max_server.app import create_app
from max_server.channels.whatsapp import payloads
from max_server.channels.whatsapp.webhook import (
    LIMITS,
    MAX_DEPTH,
    TEMPLATE_FIELDS,
    InboundMessage,
    StatusUpdate,
    TemplateUpdate,
    Unknown,
    parse,
)
from max_server.db import Database
from max_server.models import InboundEvent, WhatsAppTemplate
from max_server.settings import Settings
from tests.conftest import make_settings
from tests.reliability.load import env_int
from tests.support import factories
from tests.support.live import LiveServer

APP_SECRET = "fuzz-webhook-secret"
PHONE = payloads.DEFAULT_PHONE_NUMBER_ID
EXAMPLES = env_int("MAX_RELIABILITY_FUZZ_EXAMPLES", 120)
LIMIT = 3 * 1024 * 1024

# Strategies ------------------------------------------------------------------------------------
odd_text = st.sampled_from(
    ["\x00", "\ud800", "\udfff", "\ufeff", "‮", "😀", "\n", "'; DROP TABLE messages; --"]
)
texts = st.text(max_size=40) | st.builds(lambda a, b: a + b, st.text(max_size=10), odd_text)
long_texts = st.integers(min_value=100, max_value=5000).map(lambda n: "9" * n)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
    | long_texts
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)
maybe = json_values | texts
ids = st.text(alphabet="0123456789", min_size=1, max_size=20) | long_texts | maybe
types = st.sampled_from(
    [
        "text",
        "image",
        "document",
        "audio",
        "sticker",
        "video",
        "system",
        "reaction",
        "interactive",
        "button",
        "location",
        "contacts",
        "order",
        "unsupported",
    ]
)
media_bodies = st.fixed_dictionaries(
    {},
    optional={
        "id": ids,
        "mime_type": maybe | long_texts,
        "sha256": maybe | long_texts,
        "filename": maybe,
        "caption": maybe,
        "voice": maybe,
        "url": maybe,
    },
)
messages = st.fixed_dictionaries(
    {"id": ids, "type": types | texts | long_texts.map(lambda s: "t" + s)},
    optional={
        "from": ids,
        "from_user_id": ids,
        "timestamp": maybe | st.integers(),
        "context": json_values,
        "text": st.fixed_dictionaries({}, optional={"body": maybe}),
        "image": media_bodies,
        "document": media_bodies,
        "system": st.fixed_dictionaries({"type": st.just("user_changed_number"), "wa_id": ids}),
        "reaction": json_values,
        "interactive": json_values,
        "errors": json_values,
    },
)
statuses = st.fixed_dictionaries(
    {"id": ids, "status": st.sampled_from(["sent", "delivered", "read", "failed"]) | texts | long_texts},
    optional={"timestamp": maybe, "recipient_id": ids, "errors": json_values},
)
contacts = st.fixed_dictionaries(
    {},
    optional={"wa_id": ids, "user_id": ids, "profile": st.fixed_dictionaries({"name": maybe | long_texts})},
)
values = st.fixed_dictionaries(
    {},
    optional={
        "metadata": st.fixed_dictionaries(
            {}, optional={"phone_number_id": st.just(PHONE) | ids, "display_phone_number": ids}
        ),
        "contacts": st.lists(contacts | json_values, max_size=2),
        "messages": st.lists(messages | json_values, max_size=3),
        "statuses": st.lists(statuses | json_values, max_size=2),
        "errors": json_values,
    },
)
template_values = st.fixed_dictionaries(
    {},
    optional={
        "event": maybe | long_texts,
        "message_template_id": st.just(777) | ids,
        "message_template_name": st.just("promo") | maybe,
        "message_template_language": st.just("es") | maybe,
        "message_template_category": maybe | long_texts,
        "new_quality_score": maybe | long_texts,
        "new_category": maybe | long_texts,
        "reason": maybe,
    },
)
changes = st.one_of(
    st.fixed_dictionaries({"field": st.just("messages"), "value": values}),
    st.fixed_dictionaries({"field": st.sampled_from(TEMPLATE_FIELDS), "value": template_values}),
    st.fixed_dictionaries({"field": maybe | long_texts, "value": json_values}),
    json_values,
)
entries = st.fixed_dictionaries(
    {"changes": st.lists(changes, max_size=3)}, optional={"id": ids, "time": maybe}
)
bodies = st.fixed_dictionaries(
    {"entry": st.lists(entries | json_values, max_size=3)}, optional={"object": maybe}
)
anything = bodies | json_values


def encode(body: Any) -> bytes:
    # ensure_ascii: lone surrogates travel as \\udXXX escapes, as a hostile sender would write them.
    return json.dumps(body, ensure_ascii=True).encode()


# The parser alone -------------------------------------------------------------------------------
def _fits(item: object) -> bool:
    """What the ingest stores from an item fits its columns."""
    if isinstance(item, InboundMessage):
        media = item.media
        sizes = [
            (item.wamid, LIMITS["wamid"]),
            (item.wa_id, LIMITS["sender"]),
            (item.user_id, LIMITS["sender"]),
            (item.new_wa_id, LIMITS["sender"]),
            (item.type, LIMITS["type"]),
            (item.profile_name, 200),
            (item.account.phone_number_id, LIMITS["phone_number_id"]),
            (item.account.waba_id, 64),
            (item.account.display_phone_number, 32),
        ]
        if media is not None:
            sizes += [(media.id, 255), (media.mime_type, 255), (media.filename, 255), (media.sha256, 128)]
        return all(value is None or len(value) <= limit for value, limit in sizes)
    if isinstance(item, StatusUpdate):
        return len(item.wamid) <= LIMITS["wamid"] and len(item.status) <= LIMITS["status"]
    if isinstance(item, Unknown):
        return len(item.kind) <= 64
    return isinstance(item, TemplateUpdate)


@hypothesis_settings(max_examples=EXAMPLES * 3, deadline=None)
@given(anything)
def test_the_parser_never_raises_and_lets_through_only_what_fits(body: Any) -> None:
    items = parse(body)
    assert isinstance(items, list)
    for item in items:
        assert _fits(item), item


# The endpoint -----------------------------------------------------------------------------------
@pytest.fixture
def settings(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("MAX_CONFIG", raising=False)
    return make_settings(db, tmp_path, whatsapp={"app_secret": APP_SECRET, "phone_number_id": PHONE})


@pytest.fixture
def app(settings: Settings, db: Database) -> FastAPI:
    return create_app(settings, db=db, background=False)


@pytest.fixture
def meta(api: TestClient, db: Database) -> TestClient:
    """The in-process app (exceptions raised, not hidden behind a 500), with a template that
    template webhooks may hit."""
    account = factories.channel_account(db, external_id=PHONE)
    with db.session() as session:
        session.add(
            WhatsAppTemplate(
                channel_account_id=account.id,  # type: ignore[arg-type]
                name="promo",
                language="es",
                category="MARKETING",
                status="PENDING",
                whatsapp_template_id="777",
            )
        )
        session.commit()
    return api


def post(client: TestClient, raw: bytes) -> Any:
    return client.post(
        "/webhooks/whatsapp",
        content=raw,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": payloads.sign(raw, APP_SECRET)},
    )


def assert_enveloped(response: Any) -> None:
    assert response.status_code in (200, 400), (response.status_code, response.text[:500])
    body = response.json()
    if response.status_code == 200:
        assert body["status"] == "ok" and isinstance(body["received"], dict)
    else:
        assert (
            set(body["error"]) == {"code", "message", "details"} and body["error"]["code"] == "invalid_json"
        )


@hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(body=anything)
def test_any_signed_body_gets_an_honest_answer(meta: TestClient, body: Any) -> None:
    assert_enveloped(post(meta, encode(body)))


def _nested(depth: int) -> bytes:
    return b'{"entry": ' + b"[" * depth + b"]" * depth + b"}"


def _message(text: str, wamid: str = "wamid.odd") -> bytes:
    change = payloads.messages_change(
        PHONE, [payloads.text("5215512345678", wamid, text)], [payloads.contact("5215512345678", "J")]
    )
    return encode(payloads.envelope(PHONE, [change]))


HOSTILE = {
    "nested 100000 deep": (_nested(100_000), 400),
    "nested one level too deep": (_nested(MAX_DEPTH), 400),  # the object and 64 lists
    "nested as deep as allowed": (_nested(MAX_DEPTH - 1), 200),
    "NaN": (b'{"entry": [{"changes": [{"field": "x", "value": {"v": NaN}}]}]}', 400),
    "Infinity": (b'{"entry": [{"id": -Infinity, "changes": []}]}', 400),
    "lone surrogate in a text": (_message("\ud800 hola"), 200),
    "lone surrogate in a key": (b'{"entry": [{"changes": [{"field": "x", "value": {"\\udfff": 1}}]}]}', 200),
    "NUL in a text": (_message("a\x00b", "wamid.nul"), 200),
    "a 2.9 MB text": (_message("x" * (LIMIT - 100_000), "wamid.big"), 200),
    "a 300-digit wamid": (_message("hola", "9" * 300), 200),
    "a 4000-digit integer": (b'{"entry": [{"id": ' + b"7" * 4000 + b', "changes": []}]}', 200),
    "a 5000-digit integer": (b'{"entry": [{"id": ' + b"7" * 5000 + b', "changes": []}]}', 400),
    "not UTF-8": (b'{"entry": "\xff\xfe"}', 400),
    "UTF-16": ('{"entry": []}'.encode("utf-16"), 200),
    "empty": (b"", 400),
    "a list": (b"[1, 2, 3]", 200),
    "null": (b"null", 200),
    "wrong types everywhere": (b'{"entry": [{"changes": [{"field": 5, "value": [1]}, "x", null]}, 7]}', 200),
}


def test_hostile_bodies(meta: TestClient, db: Database) -> None:
    answers = {}
    for name, (raw, _) in HOSTILE.items():
        response = post(meta, raw)
        assert_enveloped(response)
        answers[name] = response.status_code
    assert answers == {name: expected for name, (_, expected) in HOSTILE.items()}


def test_what_cannot_be_a_message_is_kept_not_lost(meta: TestClient, db: Database) -> None:
    from sqlmodel import select

    assert post(meta, _message("hola", "9" * 300)).json()["received"] == {"kept_unknown": 1}
    with db.session(write=False) as session:
        kept = session.exec(select(InboundEvent)).all()
    assert [k.kind for k in kept] == ["message_oversized"]
    assert kept[0].payload["message"]["id"] == "9" * 300


# The size limit ---------------------------------------------------------------------------------
def _connect(live: LiveServer) -> socket.socket:
    parts = urlsplit(live.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def _head(path: str, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", *headers, "", ""]
    return "\r\n".join(lines).encode()


def _answer(sock: socket.socket) -> bytes:
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


@pytest.mark.parametrize("path", ["/webhooks/whatsapp", "/channels/chat-app/messages"])
def test_a_declared_size_over_the_limit_is_refused_before_the_body(live: LiveServer, path: str) -> None:
    with _connect(live) as sock:
        sock.sendall(_head(path, "Content-Length: 104857600") + b'{"entry": [')  # 100 MB promised
        answer = _answer(sock)  # answered with 99.99 MB never sent
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


@pytest.mark.parametrize("path", ["/webhooks/whatsapp", "/channels/chat-app/messages"])
def test_a_streamed_body_is_cut_off_at_the_limit(live: LiveServer, path: str) -> None:
    """Chunked, no length: the answer comes once the limit is crossed, while 47 MB are still to
    come (and no signature was checked: the body was never complete)."""
    chunk, total, sent = b"x" * 65536, 50 * 1024 * 1024, 0
    with _connect(live) as sock:
        sock.sendall(_head(path, "Transfer-Encoding: chunked"))
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0.01 if sent > LIMIT - 2 * len(chunk) else 0)
            if readable:
                break
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert LIMIT < sent < LIMIT + 1024 * 1024, sent


def test_the_limit_is_exact(live: LiveServer) -> None:
    """At the limit the body is read (and refused for its signature); one byte more is 413."""
    import httpx

    at_limit = httpx.post(live.url + "/webhooks/whatsapp", content=b" " * LIMIT, timeout=30)
    over = httpx.post(live.url + "/webhooks/whatsapp", content=b" " * (LIMIT + 1), timeout=30)
    assert (at_limit.status_code, over.status_code) == (401, 413)
    assert over.json()["error"]["code"] == "payload_too_large"
