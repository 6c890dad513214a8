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
from max_server.models import Conversation, CustomerBlock, Event, Message, Notification
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


def test_the_limit_holds_across_two_server_processes(
    two_processes: list[ServerProcess], postgres_db: Database
) -> None:
    import threading
    import time

    People(postgres_db).user("admin")
    now = time.time()
    bodies = [
        p.encode(p.text_webhook(PHONE_NUMBER_ID, WA, f"wamid.R{n}", f"m{n}", ts=now - 30 + n))
        for n in range(25)
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

    threads = [threading.Thread(target=post, args=(n, raw)) for n, raw in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [200] * 25
    assert flagged(postgres_db) == (20, 5)
    with postgres_db.session(write=False) as session:
        assert session.exec(select(func.count()).select_from(Notification)).one() == 1  # one per block
        assert session.exec(select(func.count()).select_from(CustomerBlock)).one() == 1
