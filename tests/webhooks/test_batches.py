"""Attempts a worker claimed together go out as a batch (one read, the address guard asked once
per URL, the successes recorded together) and each ends exactly as it would have alone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import event
from sqlmodel import col, select

from max_server.access import Actor
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs.worker import Worker
from max_server.models import WebhookAttempt, WebhookDelivery
from max_server.netguard import Target
from max_server.realtime import Sequencer
from max_server.schemas import WebhookSubscriptionCreate
from max_server.services import events, webhook_delivery, webhook_sending, webhooks
from max_server.settings import Settings
from tests.webhooks.conftest import Admin, Receiver, verify


def emit(db: Database, count: int) -> None:
    with db.session() as session:
        for n in range(count):
            events.emit(session, "sla.warning", {"id": str(n)}, to=events.audience(everyone=True))
        session.commit()
    Sequencer(db).run_once()


def deliveries(db: Database) -> list[WebhookDelivery]:
    with db.session(write=False) as session:
        return list(session.exec(select(WebhookDelivery).order_by(col(WebhookDelivery.id))))


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_attempts_claimed_together_share_their_reads_and_writes_and_each_ends_as_alone(
    admin: Admin, receiver: Receiver, worker: Worker, db: Database, clock: FrozenClock
) -> None:
    created = admin.subscribe(receiver.url, ["*"])
    receiver.answer_next(200, 503, 200)
    emit(db, 3)
    with statements(db) as seen:
        assert worker.run_once(limit=10) == 3
    got = receiver.wait_for(3)
    for delivered in got:
        verify(delivered, created["secret"])
    loads = [s for s in seen if s.startswith("SELECT") and "FROM webhook_deliveries JOIN" in s]
    logs = [s for s in seen if s.startswith("INSERT INTO webhook_attempts")]
    assert (len(loads), len(logs)) == (1, 2)  # one read; the successes logged together, the failure alone
    failed_id = got[1].webhook_id
    by_id = {d.message_id: d for d in deliveries(db)}
    assert sorted(d.state for d in by_id.values()) == ["pending", "succeeded", "succeeded"]
    failing = by_id[failed_id]
    assert (failing.state, failing.attempts, failing.last_status_code) == ("pending", 1, 503)
    assert failing.next_attempt_at == clock.now() + timedelta(seconds=5)
    with db.session(write=False) as session:
        logged = session.exec(select(WebhookAttempt)).all()
    assert sorted(a.status_code or 0 for a in logged) == [200, 200, 503]

    clock.advance(seconds=5)
    Sequencer(db).run_once()
    assert worker.drain() == 1
    assert [d.webhook_id for d in receiver.wait_for(4)][3] == failed_id
    assert [(d.state, d.attempts) for d in deliveries(db)].count(("succeeded", 1)) == 2
    assert by_id[failed_id].id in {d.id for d in deliveries(db) if (d.state, d.attempts) == ("succeeded", 2)}


def test_a_batch_asks_the_address_guard_once_per_url_and_posts_to_the_checked_address(
    db: Database, settings: Settings, receiver: Receiver
) -> None:
    from max_server.jobs import registry

    registry.load_builtin_handlers()
    port = urlsplit(receiver.url).port
    asked: list[str] = []

    def resolver(host: str, _port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    with db.session() as session:
        webhooks.create(
            session,
            Actor.system("tests"),
            settings,
            WebhookSubscriptionCreate(url=f"http://hooks.example.test:{port}/hooks/max", events=["*"]),
            resolver=resolver,
        )
        session.commit()
    asked.clear()
    emit(db, 3)
    payloads = [{"delivery_id": d.id, "attempt": 1} for d in deliveries(db)]
    assert webhook_delivery.deliver_many(db, settings, payloads, resolver) == ["success"] * 3
    assert asked == ["hooks.example.test"]
    got = receiver.wait_for(3)
    assert {d.headers["host"] for d in got} == {f"hooks.example.test:{port}"}
    # Every batch asks again: a name that now resolves elsewhere is seen at once.
    emit(db, 1)
    [newest] = deliveries(db)[-1:]
    asked.clear()
    assert webhook_delivery.deliver_many(db, settings, [{"delivery_id": newest.id}], resolver) == ["success"]
    assert asked == ["hooks.example.test"]


def test_https_names_on_one_address_never_share_a_connection() -> None:
    """Connections are pooled by the address connected to; a TLS connection was checked for one
    name only, so each https name gets its own pool. Plain http shares one."""

    def target(url: str, name: str) -> Target:
        return Target(url=url, host=name, server_name=name, address="93.184.216.34")

    one = webhook_sending.transport_for(target("https://93.184.216.34/a", "one.example.test"))
    other = webhook_sending.transport_for(target("https://93.184.216.34/b", "other.example.test"))
    again = webhook_sending.transport_for(target("https://93.184.216.34/c", "one.example.test"))
    assert one is again and one is not other
    plain = webhook_sending.transport_for(target("http://93.184.216.34/a", "one.example.test"))
    assert plain is webhook_sending.transport_for(target("http://93.184.216.34/b", "other.example.test"))
    assert plain is not one
