"""Schemathesis over MAX's OpenAPI schema, as an admin, against a live server on PostgreSQL: no
answer is a 5xx, and no answer breaks the schema the API documents for it.

The schema is the one the server serves at ``/openapi.json`` (a test below checks that the copy
used for parametrizing is the same), so every operation is its own test and a new route is
fuzzed without anyone listing it. Nothing is excluded: each example runs with a freshly made
admin, so an example that deactivates or demotes its user, or revokes its token, cannot blind
the examples after it. The process may only reach loopback (``loopback_only``): URLs generated
for webhook subscriptions never leave the machine.

``MAX_RELIABILITY_API_EXAMPLES`` (default 8) bounds the examples per operation.
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from max_server import migrate
from max_server.app import create_app
from max_server.channels.whatsapp import payloads
from max_server.channels.whatsapp.sandbox import Sandbox
from max_server.db import Database
from max_server.domain.signatures import new_secret
from max_server.models import WebhookSubscription
from max_server.settings import load_settings
from tests.conftest import People, bearer, make_settings
from tests.reliability.load import env_int
from tests.support.databases import (
    create_postgres_database,
    drop_postgres_database,
    require_postgres,
    unique_name,
)
from tests.support.live import LiveServer

APP_SECRET = "fuzz-app-secret"
EXAMPLES = env_int("MAX_RELIABILITY_API_EXAMPLES", 8)
LOOPBACK = {"127.0.0.1", "::1", "localhost"}

# The operations, read from the app itself (no database is touched to build the schema).
_UNUSED_DB = Path(tempfile.gettempdir()) / "max-openapi-schema-never-opened.db"
_SCHEMA_APP = create_app(load_settings(None, database={"url": f"sqlite:///{_UNUSED_DB}"}), background=False)
OPENAPI = _SCHEMA_APP.openapi()
_SCHEMA_APP.state.db.dispose()
schema = schemathesis.openapi.from_dict(OPENAPI)


@pytest.fixture(scope="module")
def fuzz_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """One PostgreSQL database (the stricter one: lengths, types, JSON) for the whole module:
    operations share the server, each example gets its own admin."""
    base = require_postgres()
    name = unique_name("fuzz")
    database = Database(create_postgres_database(base, name))
    migrate.upgrade(database)
    yield database
    database.dispose()
    drop_postgres_database(base, name)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(APP_SECRET) as running:
        yield running


@pytest.fixture(scope="module")
def fuzz_live(
    fuzz_db: Database, fuzz_people: People, sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    settings = make_settings(
        fuzz_db,
        tmp_path_factory.mktemp("fuzz"),
        whatsapp={
            "app_secret": APP_SECRET,
            "verify_token": "fuzz-verify",
            "access_token": sandbox.access_token,
            "phone_number_id": sandbox.phone_number_id,
            "waba_id": sandbox.waba_id,
            "graph_url": sandbox.graph_url,
            "timeout": 5,
        },
    )
    with LiveServer(create_app(settings, db=fuzz_db, background=False)) as server:
        seed(fuzz_db, fuzz_people, server, sandbox)
        yield server


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fence, not a fake: names other than loopback do not resolve and connections to other
    addresses are refused, so nothing the fuzzer invents reaches the network."""
    resolve, connect = socket.getaddrinfo, socket.create_connection

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in LOOPBACK:
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: only loopback in this test")
        return resolve(host, *args, **kwargs)

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        if address[0] not in LOOPBACK:
            raise ConnectionRefusedError(f"{address[0]}: only loopback in this test")
        return connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", create_connection)


def seed(db: Database, people: People, live: LiveServer, sandbox: Sandbox) -> None:
    """Rows with small ids, so generated ids sometimes hit something real."""
    team = people.team("ventas")
    agent, _ = people.user("agent", "Ana")
    people.join(team, agent)
    text = payloads.text("5215512345678", "wamid.seed.1", "hola, quiero comprar")
    picture = sandbox.add_media(b"\xff\xd8\xff" + b"x" * 4000, "image/jpeg")
    image = payloads.image("5215512345678", "wamid.seed.2", picture, "image/jpeg", "c2hh", caption="foto")
    change = payloads.messages_change(
        sandbox.phone_number_id, [text, image], [payloads.contact("5215512345678", "Juan")]
    )
    raw = payloads.encode(payloads.envelope(sandbox.phone_number_id, [change]))
    answer = httpx.post(
        live.url + "/webhooks/whatsapp",
        content=raw,
        headers={"X-Hub-Signature-256": payloads.sign(raw, APP_SECRET)},
    )
    assert answer.status_code == 200, answer.text
    with db.session() as session:
        session.add(
            WebhookSubscription(url="https://hooks.example.test/max", events=["*"], secret=new_secret())
        )
        session.commit()


@pytest.fixture(scope="module")
def fuzz_people(fuzz_db: Database) -> People:
    return People(fuzz_db)


@pytest.fixture
def admin_for_each_call(fuzz_people: People) -> Callable[[], str]:
    return lambda: fuzz_people.user("admin")[1]


def test_the_fuzzed_schema_is_the_one_served(fuzz_live: LiveServer) -> None:
    served = httpx.get(fuzz_live.url + "/openapi.json")
    assert served.status_code == 200
    assert served.json() == OPENAPI


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_no_server_error_and_no_broken_schema(
    case: schemathesis.Case,
    fuzz_live: LiveServer,
    admin_for_each_call: Callable[[], str],
    loopback_only: None,
) -> None:
    case.call_and_validate(
        base_url=fuzz_live.url,
        headers=bearer(admin_for_each_call()),
        checks=[not_a_server_error, response_schema_conformance],
        timeout=30,
    )
