"""Hostile values where they could hurt: local media links that are forged or stretched, SQL and
path injection in search, shortcuts, file names and template names, and a host name that
resolves first to a public and then to a private address (DNS rebinding)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import func, inspect
from sqlmodel import SQLModel, select

from max_server import netguard
from max_server.access import Actor
from max_server.channels.whatsapp import payloads
from max_server.channels.whatsapp.sandbox import Sandbox
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs import registry
from max_server.jobs.worker import Worker
from max_server.models import MediaFile, WebhookAttempt, WebhookDelivery, WhatsAppTemplate
from max_server.realtime import Sequencer
from max_server.schemas import WebhookSubscriptionCreate
from max_server.schemas.canned import SHORTCUT_RE
from max_server.services import events, webhook_delivery, webhooks
from max_server.settings import Settings
from max_server.storage.local import LocalStorage
from tests.conftest import People, bearer, make_settings
from tests.support import factories
from tests.support.live import LiveServer, free_port
from tests.support.receiver import Receiver

APP_SECRET = "hostile-app-secret"
WA_ID = "5215512345678"
PUBLIC = "93.184.216.34"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(APP_SECRET) as running:
        yield running


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def settings(
    db: Database, tmp_path: Path, sandbox: Sandbox, port: int, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    monkeypatch.delenv("MAX_CONFIG", raising=False)
    return make_settings(
        db,
        tmp_path,
        server={"public_url": f"http://127.0.0.1:{port}"},
        whatsapp={
            "app_secret": APP_SECRET,
            "access_token": sandbox.access_token,
            "phone_number_id": sandbox.phone_number_id,
            "waba_id": sandbox.waba_id,
            "graph_url": sandbox.graph_url,
            "timeout": 5,
        },
        webhooks={"allow_private_networks": True},  # the sandbox is on loopback
    )


@pytest.fixture
def live(app: Any, port: int) -> Iterator[LiveServer]:
    with LiveServer(app, port=port) as server:
        yield server


@pytest.fixture
def worker(db: Database, settings: Settings, clock: FrozenClock) -> Worker:
    registry.load_builtin_handlers()
    return Worker(db, settings, concurrency=1, now=lambda _: clock.now(), name="hostile", lease_seconds=60)


def customer_sends_file(live: LiveServer, sandbox: Sandbox, db: Database, filename: str, data: bytes) -> int:
    response, wamid, _ = sandbox.customer_media(
        live.url, WA_ID, data, "application/pdf", filename=filename, ts=None
    )
    assert response.status_code == 200, response.text
    with db.session(write=False) as session:
        from max_server.models import Message

        message = session.exec(select(Message).where(Message.channel_message_id == wamid)).one()
        media_id = session.exec(select(MediaFile.id).where(MediaFile.message_id == message.id)).one()
        assert media_id is not None
        return media_id


# Local media links ------------------------------------------------------------------------------
def test_local_media_links_cannot_be_forged_or_stretched(
    live: LiveServer, sandbox: Sandbox, db: Database, people: People, worker: Worker, settings: Settings,
    clock: FrozenClock,
) -> None:  # fmt: skip
    _, admin = people.user("admin")
    ours = customer_sends_file(live, sandbox, db, "factura.pdf", b"%PDF-1.7 ours" * 100)
    theirs = customer_sends_file(live, sandbox, db, "otra.pdf", b"%PDF-1.7 theirs" * 100)
    worker.drain()
    asked = httpx.get(f"{live.url}/api/v1/media/{ours}", params={"ttl": "1m"}, headers=bearer(admin)).json()
    url = asked["url"]
    assert httpx.get(url).content == b"%PDF-1.7 ours" * 100
    other = httpx.get(f"{live.url}/api/v1/media/{theirs}", params={"ttl": "1h"}, headers=bearer(admin)).json()
    parts, query = urlsplit(url), {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    other_parts = urlsplit(other["url"])
    other_query = {k: v[0] for k, v in parse_qs(other_parts.query).items()}
    stranger = LocalStorage(Path(settings.storage_path), settings.server.base_url, "another-servers-key-0123")
    forged = stranger.signed_url(parts.path.removeprefix("/media/"), 3600, query["name"], query["type"])

    def link(path: str = parts.path, **changes: str) -> str:
        return f"{parts.scheme}://{parts.netloc}{path}?{urlencode({**query, **changes})}"

    attempts = {
        "stretched a day": link(exp=str(int(query["exp"]) + 86400)),
        "stretched a second": link(exp=str(int(query["exp"]) + 1)),
        "signed with another server's key": forged,
        "another file's signature": link(sig=other_query["sig"], exp=other_query["exp"]),
        "another file under this signature": link(path=other_parts.path),
        "renamed": link(name="factura.html"),
        "retyped": link(type="text/html"),
        "unsigned": f"{parts.scheme}://{parts.netloc}{parts.path}",
        "escaping the root": link(path="/media/../../../etc/passwd"),
        "escaping, encoded": link(path="/media/%2e%2e/%2e%2e/etc/passwd"),
    }
    answers = {name: httpx.get(forgery).status_code for name, forgery in attempts.items()}
    escapes = ("escaping the root", "escaping, encoded")  # refused by the route, or never reach it
    assert all(code == 403 for name, code in answers.items() if name not in escapes), answers
    assert all(answers[name] in (403, 404) for name in escapes), answers
    too_long = httpx.get(f"{live.url}/api/v1/media/{ours}", params={"ttl": "8d"}, headers=bearer(admin))
    assert (too_long.status_code, too_long.json()["error"]["code"]) == (422, "invalid_ttl")
    clock.advance(seconds=61)
    expired = httpx.get(url)
    assert (expired.status_code, expired.json()["error"]["code"]) == (403, "link_expired")


# Injection ---------------------------------------------------------------------------------------
SQL = ["' OR '1'='1", "'; DROP TABLE customers; --", "\\'; SELECT pg_sleep(5); --", "%", "_", "%' --"]


def table_counts(db: Database) -> dict[str, int]:
    """Rows in every table of the schema (a table dropped by an injection would be missing)."""
    assert set(SQLModel.metadata.tables) <= set(inspect(db.engine).get_table_names())
    with db.session(write=False) as session:
        return {
            table.name: session.execute(select(func.count()).select_from(table)).scalar_one()
            for table in SQLModel.metadata.sorted_tables
        }


def test_sql_in_search_and_shortcuts_is_just_text(live: LiveServer, db: Database, people: People) -> None:
    _, admin = people.user("admin")
    api = httpx.Client(base_url=live.url, headers=bearer(admin), timeout=30)
    factories.customer(db, "Ana 100% real")
    factories.customer(db, "Beto_b")
    factories.customer(db, "Carla")
    made = api.post(
        "/api/v1/canned-responses", json={"shortcut": "/hola", "title": "100% hola", "content": "Hola"}
    )
    assert made.status_code == 201, made.text
    before = table_counts(db)
    found = {
        q: [c["name"] for c in api.get("/api/v1/customers", params={"q": q}).json()["customers"]] for q in SQL
    }
    assert found == {
        "' OR '1'='1": [], "'; DROP TABLE customers; --": [], "\\'; SELECT pg_sleep(5); --": [],
        "%": ["Ana 100% real"], "_": ["Beto_b"], "%' --": [],
    }  # fmt: skip
    for q in SQL:
        listed = api.get("/api/v1/canned-responses", params={"q": q})
        assert listed.status_code == 200, listed.text
        assert [r["shortcut"] for r in listed.json()["responses"]] == (["/hola"] if q == "%" else [])
        made = api.post("/api/v1/canned-responses", json={"shortcut": "/x" + q, "title": "t", "content": "c"})
        if SHORTCUT_RE.match("/x" + q):  # "_" is allowed in shortcuts: stored as it is
            assert (made.status_code, made.json()["shortcut"]) == (201, "/x" + q)
            api.delete(f"/api/v1/canned-responses/{made.json()['id']}")
        else:
            assert (made.status_code, made.json()["error"]["code"]) == (422, "validation_error"), q
    after = table_counts(db)
    assert after.pop("audit_log") == before.pop("audit_log") + 2  # "/x_" was made and removed
    assert after == before
    api.close()


NAMES = [
    "../../../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "a/b/../../c.pdf",
    "\x00evil.pdf",
    ".hidden",
    "..",
    "con.pdf",
    "x" * 400 + ".pdf",
    "factura'; DROP TABLE media_files; --.pdf",
    "\u202efdp.exe",  # right-to-left override: shows as "exe.pdf"
]


def test_hostile_file_names_stay_inside_the_storage(
    live: LiveServer, sandbox: Sandbox, db: Database, worker: Worker, settings: Settings
) -> None:
    root = Path(settings.storage_path).resolve()
    rows = {
        name: customer_sends_file(live, sandbox, db, name, f"data {n}".encode())
        for n, name in enumerate(NAMES)
    }
    worker.drain()
    with db.session(write=False) as session:
        stored = {name: session.get(MediaFile, media_id) for name, media_id in rows.items()}
    keys = set()
    for n, (name, media) in enumerate(stored.items()):
        assert media is not None and media.status == "stored", (name, media and media.reason)
        segment = str(media.storage_key).rsplit("/", 1)[-1]
        assert "/" not in segment and "\\" not in segment and not segment.startswith("."), (name, segment)
        path = (root / str(media.storage_key)).resolve()
        assert path.is_relative_to(root) and path.read_bytes() == f"data {n}".encode(), name
        keys.add(media.storage_key)
    assert len(keys) == len(NAMES)
    files = [p for p in root.rglob("*") if p.is_file() and ".incoming" not in p.parts]
    assert len(files) == len(NAMES)
    assert not (Path(settings.storage_path).parent / "etc").exists()


def test_sql_in_template_names_is_refused_or_inert(
    live: LiveServer, db: Database, people: People, sandbox: Sandbox
) -> None:
    _, admin = people.user("admin")
    api = httpx.Client(base_url=live.url, headers=bearer(admin), timeout=30)
    body = {
        "name": "promo",
        "language": "es",
        "category": "MARKETING",
        "components": [{"type": "BODY", "text": "Hola {{1}}", "example": {"body_text": [["Ana"]]}}],
    }
    created = api.post("/api/v1/whatsapp-templates", json=body)
    assert created.status_code in (200, 201), created.text
    before = table_counts(db)
    for name in ["promo' OR '1'='1", "promo'; DROP TABLE whatsapp_templates; --", "../promo", "promo\x00"]:
        refused = api.post("/api/v1/whatsapp-templates", json={**body, "name": name})
        assert refused.status_code == 422, (name, refused.text)
        deleted = api.delete("/api/v1/whatsapp-templates", params={"name": name})
        assert deleted.status_code in (404, 422) or deleted.json() == {"deleted": 0}, (name, deleted.text)
        change = payloads.template_status_change("APPROVED", 555, name, "es")
        answer = sandbox.post_webhook(live.url, payloads.envelope(sandbox.phone_number_id, [change]))
        assert answer.status_code == 200
    after = table_counts(db)
    assert after["whatsapp_templates"] == before["whatsapp_templates"] == 1
    assert after["inbound_events"] == before["inbound_events"] + 4  # kept as they came, matched nothing
    with db.session(write=False) as session:
        assert [t.status for t in session.exec(select(WhatsAppTemplate))] == ["PENDING"]
    api.close()


# DNS rebinding ----------------------------------------------------------------------------------
class Rebinding:
    """A name that answers a public address first and a private one afterwards."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.asked = 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked += 1
        return self.answers[min(self.asked, len(self.answers)) - 1]


def test_the_connection_goes_to_the_address_that_was_checked() -> None:
    """One lookup per request, and the request is pinned to its answer. The transport below
    records where the request would connect instead of connecting (a public address is not
    reachable from the suite, which stays on loopback)."""
    seen: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.url.host} {request.headers['host']}")
        return httpx.Response(204)

    resolver = Rebinding([PUBLIC], ["127.0.0.1"])
    with httpx.Client(transport=httpx.MockTransport(record)) as client:
        answer = netguard.request(
            client, "POST", "http://hooks.example.test/in", allow_private=False, resolver=resolver
        )
    assert (answer.status_code, resolver.asked, seen) == (204, 1, [f"{PUBLIC} hooks.example.test"])


@pytest.mark.parametrize(
    ("answers", "url"),
    [
        ([[PUBLIC, "10.0.0.7"]], "http://mixed.example.test/"),
        ([["::ffff:127.0.0.1"]], "http://mapped.example.test/"),
        ([["0.0.0.0"]], "http://zero.example.test/"),
        ([["fe80::1%eth0"]], "http://link-local.example.test/"),
    ],
)
def test_any_private_answer_is_refused(answers: list[list[str]], url: str) -> None:
    with pytest.raises(netguard.AddressRefused):
        netguard.check(url, allow_private=False, resolver=Rebinding(*answers))


@pytest.mark.parametrize("host", ["2130706433", "0x7f.0.0.1", "127.1", "017700000001", "localhost"])
def test_loopback_in_disguise_is_refused(host: str) -> None:
    """Numeric forms the system resolver turns into 127.0.0.1 (no DNS involved)."""
    with pytest.raises(netguard.AddressRefused):
        netguard.check(f"http://{host}:8080/hooks", allow_private=False)


def test_a_subscription_that_rebinds_to_loopback_reaches_nobody(db: Database, tmp_path: Path) -> None:
    """Public when subscribing, 127.0.0.1 when sending, where a real receiver listens."""
    settings = make_settings(db, tmp_path)
    assert settings.webhooks.allow_private_networks is False
    with Receiver() as receiver:
        port = urlsplit(receiver.url).port
        resolver = Rebinding([PUBLIC], ["127.0.0.1"])
        with db.session() as session:
            webhooks.create(
                session,
                Actor.system("tests"),
                settings,
                WebhookSubscriptionCreate(url=f"http://rebind.example.test:{port}/hooks", events=["*"]),
                resolver=resolver,
            )
            events.emit(session, "sla.warning", {"id": "1"}, to=events.audience(everyone=True))
            session.commit()
        Sequencer(db).run_once()
        with db.session(write=False) as session:
            delivery = session.exec(select(WebhookDelivery)).one()
        outcome = webhook_delivery.deliver(db, settings, {"delivery_id": delivery.id, "attempt": 1}, resolver)
        assert outcome == "stop"
        assert receiver.received == []
    with db.session(write=False) as session:
        attempt = session.exec(select(WebhookAttempt)).one()
    assert attempt.error is not None and "127.0.0.1" in attempt.error
