"""Two hundred conversations arriving at once on PostgreSQL, assigned by parallel workers."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, func, select

from max_server.access import Actor
from max_server.app import create_app
from max_server.channels.whatsapp import payloads as p
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.domain.routing import qualifies
from max_server.jobs import registry
from max_server.jobs.worker import Worker
from max_server.models import AgentSkill, Conversation, Job, User
from max_server.schemas import RoutingRuleCreate, TeamCreate
from max_server.services import channels, presence, routing_rules, teams
from tests.channels.conftest import APP_SECRET, PHONE_NUMBER_ID
from tests.conftest import People, make_settings
from tests.support.live import LiveServer

SYSTEM = Actor.system("tests")


@pytest.fixture
def server(postgres_db: Database, tmp_path: Path) -> Iterator[tuple[LiveServer, Any]]:
    settings = make_settings(
        postgres_db, tmp_path, whatsapp={"app_secret": APP_SECRET, "phone_number_id": PHONE_NUMBER_ID}
    )
    with LiveServer(create_app(settings, db=postgres_db, background=False)) as live:
        yield live, settings


def test_two_hundred_concurrent_conversations_never_overbook(
    server: tuple[LiveServer, Any], postgres_db: Database, clock: FrozenClock
) -> None:
    live, settings = server
    db = postgres_db
    people = People(db)
    with db.session() as session:
        team = teams.create_team(session, SYSTEM, TeamCreate(slug="support"))
    agents = []
    for n in range(12):
        user, _ = people.user("agent", f"Agent {n}", capacity=3 + n % 3)
        people.join(team, user)
        agents.append(user)
    with db.session() as session:
        for user in agents[:4]:
            routing_rules.set_skills(session, SYSTEM, str(user.id), {"vip": 3})
        routing_rules.add_rule(
            session,
            SYSTEM,
            RoutingRuleCreate(name="VIP", pattern="vip", required_skills=[{"skill": "vip", "min": 2}]),
        )  # type: ignore[list-item]
        channels.set_default_team(session, SYSTEM, PHONE_NUMBER_ID, "support")
        for user in agents:
            presence.set_presence(session, session.get(User, user.id), "online", clock.now())  # type: ignore[arg-type]
        session.commit()

    registry.load_builtin_handlers()
    workers = [
        Worker(db, settings, concurrency=2, now=lambda _: clock.now(), name=f"w{n}", lease_seconds=60)  # type: ignore[arg-type,return-value]
        for n in range(2)
    ]
    for worker in workers:
        worker.start()
    try:
        bodies = [
            p.encode(
                p.text_webhook(
                    PHONE_NUMBER_ID, f"52155{n:08d}", f"wamid.C{n}", "cliente VIP" if n % 5 == 0 else "hola"
                )
            )
            for n in range(200)
        ]
        codes: Counter[int] = Counter()

        def send(chunk: list[bytes]) -> None:
            with httpx.Client(timeout=60) as client:
                for raw in chunk:
                    codes[
                        client.post(
                            live.url + "/webhooks/whatsapp",
                            content=raw,
                            headers={"X-Hub-Signature-256": p.sign(raw, APP_SECRET)},
                        ).status_code
                    ] += 1

        threads = [threading.Thread(target=send, args=(bodies[n::10],)) for n in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert codes == Counter({200: 200})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with db.session(write=False) as session:
                busy = session.exec(
                    select(func.count())
                    .select_from(Job)
                    .where(col(Job.kind).like("routing.%"), col(Job.state).in_(("queued", "running")))
                ).one()
            if not busy:
                break
            time.sleep(0.1)
        assert not busy
    finally:
        for worker in workers:
            worker.stop()

    with db.session(write=False) as session:
        check_invariants(session, agents)


def check_invariants(session: Session, agents: list[Any]) -> None:
    conversations = list(session.exec(select(Conversation)))
    assert len(conversations) == 200
    load = Counter(c.assignee_id for c in conversations if c.status == "assigned")
    capacity = {u.id: u.capacity for u in agents}
    skills: dict[int, dict[str, int]] = {u.id: {} for u in agents}
    for skill in session.exec(select(AgentSkill)):
        skills[skill.user_id][skill.skill] = skill.proficiency
    over = {uid: (load[uid], capacity[uid]) for uid in capacity if load[uid] > capacity[uid]}
    assert over == {}, f"agents over capacity: {over}"
    assert sum(load.values()) == sum(capacity.values()), "agents left with room while conversations wait"
    for conversation in conversations:
        if conversation.status != "queued":
            continue
        need = list(conversation.required_skills or [])
        for uid in capacity:
            eligible = all(skills[uid].get(r["skill"], 0) >= r["min"] for r in need)
            assert not (eligible and load[uid] < capacity[uid]), (
                f"conversation {conversation.number} waits while agent {uid} has room"
            )
    vip = [c for c in conversations if c.required_skills and c.status == "assigned"]
    assert vip and all(skills[c.assignee_id].get("vip", 0) >= 2 for c in vip)  # type: ignore[index]
    _ = qualifies


def test_an_agent_in_two_teams_is_never_overbooked_by_their_parallel_passes(
    postgres_db: Database, clock: FrozenClock
) -> None:
    """Team A's pass has assigned Ana's last slot but not committed; team B's pass, in another
    session, must wait for it and then see Ana full (the team locks alone do not stop this)."""
    from max_server.services import routing
    from tests.support import factories

    db = postgres_db
    people = People(db)
    team_a, team_b = people.team("a"), people.team("b")
    ana, _ = people.user("agent", "Ana", capacity=1)
    people.join(team_a, ana)
    people.join(team_b, ana)
    with db.session() as session:
        presence.set_presence(session, session.get(User, ana.id), "online", clock.now())  # type: ignore[arg-type]
        session.commit()
    for team, name in ((team_a, "x"), (team_b, "y")):
        factories.conversation(
            db, team=team, customer_row=factories.customer(db, name), queued_at=clock.now()
        )

    first = db.session()
    assert routing.assign_queue(first, team_a.id, clock.now(), 120) == 1  # not committed yet
    outcome: dict[str, Any] = {}

    def team_b_pass() -> None:
        with db.session() as second:
            outcome["assigned"] = routing.assign_queue(second, team_b.id, clock.now(), 120)
            second.commit()

    thread = threading.Thread(target=team_b_pass)
    thread.start()
    deadline = time.monotonic() + 30
    while thread.is_alive() and not _waiting_for_an_advisory_lock(db):  # B blocked, or B done
        assert time.monotonic() < deadline, "team B's pass neither finished nor waited"
        time.sleep(0.01)
    blocked = thread.is_alive()
    first.commit()
    first.close()
    thread.join(30)
    assert not thread.is_alive()
    with db.session(write=False) as session:
        load = session.exec(
            select(func.count())
            .select_from(Conversation)
            .where(Conversation.assignee_id == ana.id, Conversation.status == "assigned")
        ).one()
    assert (load, outcome["assigned"]) == (1, 0), f"Ana has {load} conversations for a capacity of 1"
    assert blocked  # B waited for A's commit rather than counting a stale load


def _waiting_for_an_advisory_lock(db: Database) -> bool:
    from sqlalchemy import text

    with db.session(write=False) as session:
        waiting = session.execute(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        ).scalar_one()
    return bool(waiting)


def test_shared_agents_under_many_parallel_passes_of_three_teams(
    postgres_db: Database, clock: FrozenClock
) -> None:
    """Agents in every team, passes of all three teams racing in threads: nobody over capacity,
    and nobody with room while a conversation of one of their teams waits."""
    from max_server.services import routing
    from tests.support import factories

    db = postgres_db
    people = People(db)
    team_list = [people.team(slug) for slug in ("a", "b", "c")]
    agents = []
    for n in range(4):
        user, _ = people.user("agent", f"Agent {n}", capacity=1 + n % 2)
        for team in team_list:
            people.join(team, user)
        agents.append(user)
    with db.session() as session:
        for user in agents:
            presence.set_presence(session, session.get(User, user.id), "online", clock.now())  # type: ignore[arg-type]
        session.commit()
    for n in range(12):
        team = team_list[n % 3]
        factories.conversation(
            db, team=team, customer_row=factories.customer(db, f"c{n}"), queued_at=clock.now()
        )

    def passes(team_id: int) -> None:
        for _ in range(5):
            with db.session() as session:
                routing.assign_queue(session, team_id, clock.now(), 120)
                session.commit()

    threads = [threading.Thread(target=passes, args=(t.id,)) for t in team_list for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with db.session(write=False) as session:
        rows = list(session.exec(select(Conversation)))
    load = Counter(c.assignee_id for c in rows if c.status == "assigned")
    assert all(load[u.id] <= u.capacity for u in agents), load
    assert sum(load.values()) == sum(u.capacity for u in agents)  # 6 slots, 12 waiting: all filled
