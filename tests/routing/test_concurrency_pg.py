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
