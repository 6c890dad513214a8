"""A pass locks only the agents it chose, counts them again under the lock, falls back to the
next agent when its choice filled meanwhile, and never waits where it could deadlock."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlmodel import Session

from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.services import routing, routing_pool
from tests.conftest import People
from tests.routing.test_assignment import online, queued_conversation, state
from tests.routing.test_concurrency_pg import _waiting_for_an_advisory_lock
from tests.support import factories


def agent_locks(session: Session) -> list[int]:
    """The agents whose lock this session's transaction holds."""
    return list(
        session.execute(
            text(
                "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2"
                " AND classid::bigint = :ns AND pid = pg_backend_pid() AND granted ORDER BY objid"
            ),
            {"ns": routing_pool._AGENT_LOCKS},
        ).scalars()
    )


def test_a_pass_locks_only_the_agent_it_chose(postgres_db: Database, clock: FrozenClock) -> None:
    db = postgres_db
    people = People(db)
    team = people.team("support")
    agents = [people.user("agent", f"Agent {n}", capacity=2)[0] for n in range(6)]
    for agent in agents:
        people.join(team, agent)
    online(db, *agents, clock=clock)
    conversation = queued_conversation(db, team, clock, "uno")
    with db.session() as session:
        assert routing.assign_queue(session, team.id, clock.now(), 120) == 1
        chosen = assignee_in(session, conversation.id)
        assert agent_locks(session) == [chosen]  # not the five others with room too
        session.commit()


def assignee_in(session: Session, conversation_id: int | None) -> int:
    return int(
        session.execute(
            text("SELECT assignee_id FROM conversations WHERE id = :id"), {"id": conversation_id}
        ).scalar_one()
    )


def test_a_pass_falls_back_to_the_next_agent_when_its_choice_filled_meanwhile(
    postgres_db: Database, clock: FrozenClock
) -> None:
    """Ana (sales and support, capacity 1) ranks first for both teams. Sales' pass takes her last
    slot; support's pass, which chose her too, waits for that commit, sees her full under the
    lock and gives its conversation to Bob instead of leaving it waiting."""
    db = postgres_db
    people = People(db)
    sales, support = people.team("sales"), people.team("support")
    ana, _ = people.user("agent", "Ana", capacity=1)
    bob, _ = people.user("agent", "Bob", capacity=1)
    people.join(sales, ana)
    people.join(support, ana)
    people.join(support, bob)
    online(db, ana, bob, clock=clock)
    sold = queued_conversation(db, sales, clock, "venta")
    helped = queued_conversation(db, support, clock, "ayuda")

    first = db.session()
    assert routing.assign_queue(first, sales.id, clock.now(), 120) == 1  # not committed yet
    outcome: dict[str, Any] = {}

    def support_pass() -> None:
        with db.session() as second:
            outcome["assigned"] = routing.assign_queue(second, support.id, clock.now(), 120)
            second.commit()

    thread = threading.Thread(target=support_pass)
    thread.start()
    deadline = time.monotonic() + 30
    while not _waiting_for_an_advisory_lock(db):
        assert thread.is_alive(), "support's pass did not wait for Ana's lock"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    first.commit()
    first.close()
    thread.join(30)
    assert not thread.is_alive()
    assert outcome["assigned"] == 1
    assert (state(db, sold).assignee_id, state(db, helped).assignee_id) == (ana.id, bob.id)


def test_a_pass_only_tries_agents_below_the_ones_it_holds(postgres_db: Database, clock: FrozenClock) -> None:
    """Waiting for a lower agent while holding a higher one could deadlock with a pass doing the
    opposite: below what it holds, a pass only tries, and leaves out whoever is taken."""
    db = postgres_db
    people = People(db)
    low, high = people.user("agent", "Low")[0], people.user("agent", "High")[0]
    with db.session() as first, db.session() as second:
        assert routing_pool.Reservations(first).secure([low.id])[1] == set()
        # A wait would fail after 2 s rather than hang the test.
        second.execute(text("SET LOCAL lock_timeout = '2s'"))
        mine = routing_pool.Reservations(second)
        fresh, taken = mine.secure([high.id])
        assert (set(fresh), taken) == ({high.id}, set())
        fresh, taken = mine.secure([low.id])
        assert (fresh, taken) == ({}, {low.id})
        assert agent_locks(second) == [high.id]
        first.rollback()
        fresh, taken = mine.secure([low.id])  # free again: a try takes it
        assert (set(fresh), taken) == ({low.id}, set())
        second.rollback()


def test_a_pass_leaves_out_an_agent_held_below_the_ones_it_holds(
    postgres_db: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pass chose High; before it locks him, another pass fills his last slot, so it turns to
    Low, whose lock sits below High's and is held by a third pass: it does not wait for it (that
    could deadlock), it leaves Low out and the conversation waits for a later pass."""
    db = postgres_db
    people = People(db)
    team = people.team("support")
    low, _ = people.user("agent", "Low", capacity=2)
    high, _ = people.user("agent", "High", capacity=1)
    people.join(team, low)
    people.join(team, high)
    online(db, low, high, clock=clock)
    factories.conversation(db, assignee=low, customer_row=factories.customer(db, "uno"))  # 1 of 2
    waiting = queued_conversation(db, team, clock, "espera")
    holder = db.session()
    routing_pool.Reservations(holder).secure([low.id])
    read = routing_pool.candidates

    def filled_meanwhile(*args: Any, **kwargs: Any) -> Any:
        pool = read(*args, **kwargs)
        factories.conversation(db, assignee=high, customer_row=factories.customer(db, "dos"))
        return pool

    monkeypatch.setattr(routing_pool, "candidates", filled_meanwhile)
    try:
        with db.session() as session:
            session.execute(text("SET LOCAL lock_timeout = '2s'"))  # a wait fails, not hangs
            assert routing.assign_queue(session, team.id, clock.now(), 120) == 0
            session.commit()
    finally:
        holder.rollback()
        holder.close()
    assert state(db, waiting).status == "queued"


def test_one_assignment_costs_the_same_statements_for_three_or_forty_agents(
    db: Database, people: People, clock: FrozenClock
) -> None:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    counts = []
    for size in (3, 40):
        team = people.team(f"t{size}")
        agents = [people.user("agent", f"A{size}-{n}")[0] for n in range(size)]
        for agent in agents:
            people.join(team, agent)
        online(db, *agents, clock=clock)
        queued_conversation(db, team, clock, f"c{size}")
        seen.clear()
        event.listen(db.engine, "before_cursor_execute", record)
        try:
            with db.session() as session:
                assert routing.assign_queue(session, team.id, clock.now(), 120) == 1
                session.commit()
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        counts.append(len(seen))
    assert counts[0] == counts[1], counts
