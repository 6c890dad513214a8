"""Customer rate limits: exact sliding windows on the customer's clock, one notification per
block, held messages stored and flagged, nothing routed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, func, select

from max_server.channels.whatsapp import payloads as p
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.models import (
    Conversation,
    CustomerBlock,
    CustomerIdentity,
    Event,
    Message,
    Notification,
)
from max_server.services.rate_limits import FLAG
from tests.channels.conftest import APP_SECRET, PHONE_NUMBER_ID, WhatsApp
from tests.conftest import People, bearer
from tests.support.live import LiveServer
from tests.support.processes import ServerProcess

WA = "5215599990000"


def flagged(db: Database) -> tuple[int, int]:
    with db.session(write=False) as session:
        messages = list(session.exec(select(Message)))
    held = sum("rate_limited" in m.flags for m in messages)
    return len(messages) - held, held


def test_twenty_five_messages_in_a_minute(
    whatsapp: WhatsApp, db: Database, people: People, clock: FrozenClock
) -> None:
    team = people.team("support")
    supervisor, _ = people.user("agent", "Sofía")
    people.join(team, supervisor, "supervisor")
    _, admin = people.user("admin")
    start = clock.now() - timedelta(seconds=60)
    for n in range(25):
        whatsapp.text(f"spam {n}", wa_id=WA, ts=(start + timedelta(seconds=n * 2)).timestamp())
    assert flagged(db) == (20, 5)
    with db.session(write=False) as session:
        notes = list(session.exec(select(Notification).where(Notification.kind == "customer.rate_limited")))
        blocks = list(session.exec(select(CustomerBlock)))
        rate_events = list(session.exec(select(Event).where(Event.type == "customer.rate_limited")))
        held_events = [
            e
            for e in session.exec(select(Event).where(Event.type == "message.created"))
            if "rate_limited" in e.data["flags"]
        ]
    assert len(notes) == 1 and len(rate_events) == 1  # once per block, to the admins (no team)
    assert len(blocks) == 1 and blocks[0].held_count == 5
    # Held messages are not pushed to agents as new work: only supervisors/admins hear of them.
    assert all(e.audience["teams"] == [] for e in held_events)
    _ = admin


def test_no_double_burst_at_a_window_boundary(whatsapp: WhatsApp, db: Database, clock: FrozenClock) -> None:
    base = clock.now() - timedelta(minutes=5)
    for n in range(20):
        whatsapp.text(f"a{n}", wa_id=WA, ts=(base + timedelta(seconds=59)).timestamp())
    for n in range(20):
        whatsapp.text(f"b{n}", wa_id=WA, ts=(base + timedelta(seconds=61)).timestamp())
    passed, held = flagged(db)
    assert passed == 20 and held == 20  # a fixed window would have let all 40 through


def test_a_replayed_backlog_is_judged_on_customer_time(
    whatsapp: WhatsApp, db: Database, clock: FrozenClock
) -> None:
    """Meta retrying after an outage: 40 old messages arrive in one second, written over an hour."""
    start = clock.now() - timedelta(hours=2)
    for n in range(40):
        whatsapp.text(f"old {n}", wa_id=WA, ts=(start + timedelta(seconds=90 * n)).timestamp())
    assert flagged(db) == (40, 0)


def test_new_conversations_per_hour_and_release(
    live: LiveServer,
    db: Database,
    people: People,
    clock: FrozenClock,
    tmp_path: Path,
    settings: Any,
    whatsapp: WhatsApp,
) -> None:
    _, admin = people.user("admin")
    for n in range(6):  # six conversations within the hour: close each to start the next
        whatsapp.text(f"nueva {n}", wa_id=WA, ts=clock.now().timestamp())
        with db.session() as session:
            conversation = session.exec(select(Conversation).where(Conversation.status != "closed")).one()
            conversation.status, conversation.closed_at = "closed", clock.now() - timedelta(days=2)
            session.add(conversation)
            session.commit()
        clock.advance(minutes=5)
    with db.session(write=False) as session:
        held = list(session.exec(select(Conversation).where(col(Conversation.rate_limited).is_(True))))
    assert len(held) == 1
    blocks = httpx.get(live.url + "/api/v1/rate-limits/blocks", headers=bearer(admin)).json()["blocks"]
    assert len(blocks) == 1 and "new conversations" in blocks[0]["reason"]
    lifted = httpx.post(
        live.url + f"/api/v1/rate-limits/blocks/{blocks[0]['customer_id']}/unblock", headers=bearer(admin)
    )
    assert lifted.json() == {"lifted": 1}
    assert httpx.get(live.url + "/api/v1/rate-limits/blocks", headers=bearer(admin)).json()["blocks"] == []


@pytest.fixture
def two_processes(postgres_db: Database, tmp_path: Path) -> Any:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{postgres_db.url}"\n[storage]\npath = "{tmp_path}/media"\n'
        f'[whatsapp]\napp_secret = "{APP_SECRET}"\nphone_number_id = "{PHONE_NUMBER_ID}"\n'
        "[jobs]\nenabled = false\n"
    )
    home = tmp_path / "home"
    home.mkdir()
    servers = [ServerProcess(config, home).start() for _ in range(2)]
    yield servers
    for server in servers:
        server.terminate()


def test_the_limits_hold_across_two_server_processes(
    two_processes: list[ServerProcess], postgres_db: Database
) -> None:
    """Three customers at once, their webhooks spread over two processes in parallel: a burst of
    25 in a minute, 20 at second 59 and 20 at second 61, and a backlog of 40 messages written
    90 s apart over an hour, replayed in one go."""
    import threading
    import time

    People(postgres_db).user("admin")
    now = time.time()
    burst, boundary, backlog = "5215500000001", "5215500000002", "5215500000003"
    sent = [(burst, now - 30 + n) for n in range(25)]
    sent += [(boundary, now - 300 + (59 if n < 20 else 61)) for n in range(40)]
    sent += [(backlog, now - 2 * 3600 + 90 * n) for n in range(40)]
    bodies = [
        (wa_id, p.encode(p.text_webhook(PHONE_NUMBER_ID, wa_id, f"wamid.R{n}", f"m{n}", ts=ts)))
        for n, (wa_id, ts) in enumerate(sent)
    ]
    codes: list[int] = []

    def post(index: int, raw: bytes) -> None:
        server = two_processes[index % 2]
        headers = {"X-Hub-Signature-256": p.sign(raw, APP_SECRET)}
        codes.append(
            httpx.post(
                server.url + "/webhooks/whatsapp", content=raw, headers=headers, timeout=120
            ).status_code
        )

    threads = [threading.Thread(target=post, args=(n, raw)) for n, (_, raw) in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [200] * len(bodies)
    with postgres_db.session(write=False) as session:
        by_wa = dict(session.exec(select(CustomerIdentity.external_id, CustomerIdentity.customer_id)).all())
        outcome = {}
        for wa_id in (burst, boundary, backlog):
            customer = by_wa[wa_id]
            flags = [
                m.flags
                for m in session.exec(
                    select(Message)
                    .join(Conversation, col(Conversation.id) == Message.conversation_id)
                    .where(Conversation.customer_id == customer)
                )
            ]
            held = sum(FLAG in f for f in flags)
            blocks = session.exec(
                select(func.count()).select_from(CustomerBlock).where(CustomerBlock.customer_id == customer)
            ).one()
            notes = [
                n
                for n in session.exec(
                    select(Notification).where(Notification.kind == "customer.rate_limited")
                )
                if n.data["customer_id"] == str(customer)
            ]
            outcome[wa_id] = (len(flags) - held, held, blocks, len(notes))
    assert outcome == {
        burst: (20, 5, 1, 1),  # one block, one notification
        boundary: (20, 20, 1, 1),  # no double burst at a window boundary, in any arrival order
        backlog: (40, 0, 0, 0),  # judged on customer time, not on arrival
    }


def test_a_message_written_before_the_block_began_is_not_held(
    whatsapp: WhatsApp, db: Database, clock: FrozenClock
) -> None:
    """Meta replays, out of order, a message the customer wrote 100 s before a burst: the
    burst's block began later, so it does not hold it (and the windows have room for it)."""
    t0 = clock.now() - timedelta(minutes=30)
    for n in range(21):  # 20 pass, the 21st is held and starts a block at t0 + 120 s
        whatsapp.text(f"burst {n}", wa_id=WA, ts=(t0 + timedelta(seconds=100 + n)).timestamp())
    whatsapp.text("earlier", wa_id=WA, ts=t0.timestamp())
    whatsapp.text("during", wa_id=WA, ts=(t0 + timedelta(seconds=200)).timestamp())
    with db.session(write=False) as session:
        held = {m.content_text: FLAG in m.flags for m in session.exec(select(Message))}
        [block] = session.exec(select(CustomerBlock)).all()
    assert (held["earlier"], held["burst 20"], held["during"]) == (False, True, True)
    assert sum(held.values()) == 2 and block.held_count == 2
    assert block.starts_at == t0 + timedelta(seconds=120)
    assert block.until == t0 + timedelta(seconds=120, minutes=10)


def test_the_team_supervisors_hear_once_with_the_block_as_the_api_shows_it(
    live: LiveServer, whatsapp: WhatsApp, db: Database, people: People, clock: FrozenClock
) -> None:
    from max_server.access import Actor
    from max_server.services import channels

    team = people.team("support")
    sofia, sofia_token = people.user("supervisor", "Sofía")
    ana, _ = people.user("agent", "Ana")
    people.join(team, sofia, "supervisor")
    people.join(team, ana)
    admin, _ = people.user("admin")
    with db.session() as session:
        channels.set_default_team(session, Actor.system("tests"), PHONE_NUMBER_ID, "support")
    start = clock.now() - timedelta(seconds=60)
    for n in range(23):
        whatsapp.text(f"spam {n}", wa_id=WA, ts=(start + timedelta(seconds=n)).timestamp())
    with db.session(write=False) as session:
        notes = list(session.exec(select(Notification).where(Notification.kind == "customer.rate_limited")))
        [event] = session.exec(select(Event).where(Event.type == "customer.rate_limited")).all()
    assert [n.user_id for n in notes] == [sofia.id]  # the team's supervisors, not the admins
    assert event.audience["users"] == [sofia.id]
    [shown] = httpx.get(live.url + "/api/v1/rate-limits/blocks", headers=bearer(sofia_token)).json()["blocks"]
    # The event and the notification carry the block as the API shows it (at notification time).
    assert event.data == {**shown, "held_count": 1}
    assert notes[0].data == event.data
    assert (shown["customer_name"], shown["held_count"], shown["kind"]) == ("Juan López", 3, "messages")
    assert shown["conversation_id"] is not None and shown["conversation_number"] == 1
    _ = (ana, admin)


def test_old_counters_are_cleaned_daily(
    db: Database, settings: Any, clock: FrozenClock, people: People
) -> None:
    """``rate_limits.prune`` is a daily periodic job; it deletes counters older than a day (the
    windows are at most an hour) on the database's clock, in batches, and keeps the rest."""
    from datetime import UTC, datetime

    from max_server.jobs import queue, registry
    from max_server.jobs.worker import Worker
    from max_server.models import RateEvent
    from max_server.services import rate_limits
    from tests.support import factories

    registry.load_builtin_handlers()
    assert {t.name: t.interval for t in registry.periodic_tasks()}["rate_limits.prune"] == 86400
    customer = factories.customer(db, "Juan")
    real_now = datetime.now(UTC)  # the job uses the database's clock
    with db.session() as session:
        for _ in range(7):
            session.add(
                RateEvent(
                    customer_id=customer.id,
                    kind="message",
                    at=real_now,
                    created_at=real_now - timedelta(days=2),
                )  # type: ignore[arg-type]
            )
        session.add(RateEvent(customer_id=customer.id, kind="message", at=real_now, created_at=real_now))  # type: ignore[arg-type]
        session.commit()
    with db.session() as session:  # batches: a small one leaves the rest for the next
        assert rate_limits.prune(session, real_now - timedelta(days=1), batch=5) == 5
        session.commit()
    with db.session() as session:
        queue.enqueue(session, "rate_limits.prune")
        session.commit()
    Worker(db, settings, concurrency=1, name="prune", lease_seconds=60).drain()
    with db.session(write=False) as session:
        left = list(session.exec(select(RateEvent)))
    assert [r.created_at >= real_now - timedelta(seconds=1) for r in left] == [True]
