"""Assignment passes: freed slots serve every team of the agent, the queue is read past its first
page, waiting is explained, requeued conversations keep their age, presence changes are events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlmodel import col, select

from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs.worker import Worker
from max_server.models import Conversation, Customer, Event, RoutingDecision, User
from max_server.services import presence, routing
from tests.conftest import People, bearer
from tests.routing.test_assignment import assign, online, queued_conversation, state
from tests.support import factories
from tests.support.live import LiveServer


def decisions_of(db: Database, conversation: Any) -> list[tuple[str, str]]:
    with db.session(write=False) as session:
        rows = session.exec(
            select(RoutingDecision)
            .where(RoutingDecision.conversation_id == conversation.id)
            .order_by(col(RoutingDecision.id))
        ).all()
    return [(d.strategy, d.reason) for d in rows]


def test_closing_frees_a_slot_for_every_team_of_the_agent(
    live: LiveServer, worker: Worker, db: Database, people: People, clock: FrozenClock
) -> None:
    """Ana (capacity 1) is in sales and support; she closes her sales conversation: the support
    queue, not only the sales one, gets her free slot."""
    sales, support = people.team("sales"), people.team("support")
    ana, ana_token = people.user("agent", "Ana", capacity=1)
    people.join(sales, ana)
    people.join(support, ana)
    online(db, ana, clock=clock)
    mine = queued_conversation(db, sales, clock, "venta")
    assign(db, sales, clock)
    assert state(db, mine).assignee_id == ana.id
    waiting = queued_conversation(db, support, clock, "soporte")
    assign(db, support, clock)
    assert state(db, waiting).status == "queued"  # Ana is full
    closed = httpx.post(
        live.url + f"/api/v1/conversations/{mine.id}/close",
        json={"reason": "resolved"},
        headers=bearer(ana_token),
    )
    assert closed.status_code == 200, closed.text
    worker.drain()
    assert (state(db, waiting).status, state(db, waiting).assignee_id) == ("assigned", ana.id)


def test_the_queue_is_read_past_its_first_page_while_someone_has_room(
    db: Database, people: People, clock: FrozenClock
) -> None:
    """More than a page (200) of older conversations wait for a skill nobody online has; the one
    behind them that anyone can take is still assigned."""
    team = people.team("support")
    ana, _ = people.user("agent", "Ana", capacity=2)
    people.join(team, ana)
    online(db, ana, clock=clock)
    account = factories.channel_account(db)
    need = [{"skill": "klingon", "min": 1}]
    older = clock.now() - timedelta(seconds=60)  # waited less than the relaxation time
    with db.session() as session:
        for n in range(routing.BATCH + 5):
            customer = Customer(name=f"K{n}")
            session.add(customer)
            session.flush()
            session.add(
                Conversation(
                    number=n + 1,
                    customer_id=customer.id,  # type: ignore[arg-type]
                    channel_account_id=account.id,  # type: ignore[arg-type]
                    team_id=team.id,
                    status="queued",
                    required_skills=need,
                    queued_at=older,
                )
            )
        session.commit()
    anyone = queued_conversation(db, team, clock, "cualquiera")
    assert assign(db, team, clock, relax=120) == 1
    assert state(db, anyone).assignee_id == ana.id
    with db.session(write=False) as session:
        waits = session.exec(
            select(RoutingDecision).where(RoutingDecision.strategy == "waiting_for_skills")
        ).all()
    assert len(waits) == routing.BATCH + 5  # every one of them says why it waits
    assert {w.reason for w in waits} == {"no online agent has all the required skills"}


def test_waiting_is_recorded_when_its_reason_changes_and_explained(
    live: LiveServer, db: Database, people: People, clock: FrozenClock
) -> None:
    team = people.team("support")
    ana, _ = people.user("agent", "Ana", capacity=1)
    _, admin = people.user("admin")
    people.join(team, ana)
    first = queued_conversation(db, team, clock, "uno")
    assign(db, team, clock)
    assign(db, team, clock)  # the same reason again: nothing new
    assert decisions_of(db, first) == [("no_agent_available", "no online agent in the team")]
    online(db, ana, clock=clock)
    assign(db, team, clock)
    second = queued_conversation(db, team, clock, "dos")
    assign(db, team, clock)
    assign(db, team, clock)
    assert [s for s, _ in decisions_of(db, first)] == ["no_agent_available", "capacity"]
    assert decisions_of(db, second) == [("no_agent_available", "no online agent with room")]
    shown = httpx.get(live.url + f"/api/v1/conversations/{second.id}/routing", headers=bearer(admin)).json()
    [decision] = shown["decisions"]
    assert (decision["strategy"], decision["reason"]) == ("no_agent_available", "no online agent with room")
    assert [(c["name"], c["has_room"]) for c in decision["candidates"]] == [("Ana", False)]


def test_a_requeued_conversation_keeps_its_age_in_the_queue(
    db: Database, people: People, clock: FrozenClock, settings: Any
) -> None:
    team = people.team("support")
    ana, _ = people.user("agent", "Ana", capacity=1)
    beto, _ = people.user("agent", "Beto", capacity=1)
    people.join(team, ana)
    people.join(team, beto)
    online(db, ana, clock=clock)
    old = queued_conversation(db, team, clock, "vieja")
    entered = clock.now()
    assign(db, team, clock)
    assert state(db, old).assignee_id == ana.id
    clock.advance(minutes=2)
    newer = queued_conversation(db, team, clock, "nueva")
    timeout, requeue_after = settings.routing.presence_timeout, settings.routing.requeue_after
    clock.advance(seconds=timeout + 1)
    with db.session() as session:  # Ana went silent: away, then her conversation is requeued
        presence.sweep(session, clock.now(), timeout, requeue_after)
        session.commit()
    clock.advance(seconds=requeue_after)
    with db.session() as session:
        presence.sweep(session, clock.now(), timeout, requeue_after)
        session.commit()
    assert (state(db, old).status, state(db, old).queued_at) == ("queued", entered)
    online(db, beto, clock=clock)
    assign(db, team, clock)
    assert state(db, old).assignee_id == beto.id  # older than the one that came in meanwhile
    assert state(db, newer).status == "queued"


def test_presence_changes_are_events_from_the_heartbeat_and_the_sweep(
    live: LiveServer, db: Database, people: People, clock: FrozenClock, settings: Any
) -> None:
    ana, ana_token = people.user("agent", "Ana")
    put = httpx.put(live.url + "/api/v1/me/presence", json={"presence": "online"}, headers=bearer(ana_token))
    assert put.status_code == 200
    httpx.put(live.url + "/api/v1/me/presence", json={"presence": "online"}, headers=bearer(ana_token))
    clock.advance(seconds=settings.routing.presence_timeout + 1)
    with db.session() as session:
        presence.sweep(
            session, clock.now(), settings.routing.presence_timeout, settings.routing.requeue_after
        )
        session.commit()
        assert session.get(User, ana.id).presence == "away"  # type: ignore[union-attr]
    with db.session(write=False) as session:
        changes = session.exec(
            select(Event).where(Event.type == "agent.presence_changed").order_by(col(Event.id))
        ).all()
    # One per change (the second heartbeat changed nothing), each carrying the agent as the API
    # shows users, and heard by everyone.
    assert [(e.data["id"], e.data["previous_presence"], e.data["presence"]) for e in changes] == [
        (str(ana.id), "offline", "online"),
        (str(ana.id), "online", "away"),
    ]
    assert all(e.audience["all"] for e in changes)


def _enqueue_pass(db: Database, team: Any) -> None:
    """A pass enqueued outright (as a retry or another process may leave one), not joined."""
    from max_server.jobs import queue

    with db.session() as session:
        queue.enqueue(session, "routing.assign", {"team_id": team.id}, ordering_key=f"assign:{team.id}")
        session.commit()


def _passes(db: Database, team: Any) -> list[tuple[str, int]]:
    from max_server.models import Job

    with db.session(write=False) as session:
        jobs = session.exec(select(Job).where(Job.kind == "routing.assign").order_by(col(Job.id))).all()
    return [(j.state, j.attempts) for j in jobs if j.payload == {"team_id": team.id}]


def test_conversations_queued_one_after_another_join_one_pass(
    worker: Worker, db: Database, people: People, clock: FrozenClock
) -> None:
    """Twelve conversations queue while no worker runs, each transaction asking for its team's
    pass: they join the one queued pass, which assigns all twelve; another team's is its own."""
    from max_server.handlers.routing import enqueue_assign

    support, sales = people.team("support"), people.team("sales")
    ana, _ = people.user("agent", "Ana", capacity=50)
    people.join(support, ana)
    online(db, ana, clock=clock)
    waiting = []
    for n in range(12):
        waiting.append(queued_conversation(db, support, clock, f"cliente {n}"))
        with db.session() as session:
            enqueue_assign(session, support.id)
            session.commit()
    with db.session() as session:
        enqueue_assign(session, sales.id)
        session.commit()
    assert _passes(db, support) == [("queued", 0)]
    assert _passes(db, sales) == [("queued", 0)]
    worker.drain()
    assert {state(db, c).status for c in waiting} == {"assigned"}
    assert _passes(db, support) == [("done", 1)]


def test_a_burst_of_passes_is_one_pass_and_misses_nothing(
    worker: Worker, db: Database, people: People, clock: FrozenClock
) -> None:
    """Passes already queued behind the one that runs are absorbed by it (done, never started):
    it reads the queue after them, so it assigns what each of them was for."""
    support, sales = people.team("support"), people.team("sales")
    ana, _ = people.user("agent", "Ana", capacity=50)
    people.join(support, ana)
    online(db, ana, clock=clock)
    worker.drain()
    waiting = []
    for n in range(12):
        waiting.append(queued_conversation(db, support, clock, f"cliente {n}"))
        _enqueue_pass(db, support)
    _enqueue_pass(db, sales)
    assert worker.run_once() == 1  # the oldest job: support's first pass
    assert {state(db, c).status for c in waiting} == {"assigned"}
    ours = _passes(db, support)
    assert ours[-12:] == [("done", 1)] + [("done", 0)] * 11
    assert _passes(db, sales) == [("queued", 0)]


def test_a_pass_that_fails_gives_the_absorbed_passes_back(
    worker: Worker, db: Database, people: People, clock: FrozenClock, monkeypatch: Any
) -> None:
    support = people.team("support")
    for n in range(3):
        queued_conversation(db, support, clock, f"cliente {n}")
        _enqueue_pass(db, support)

    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("the pass broke")

    monkeypatch.setattr(routing, "assign_queue", broken)
    worker.run_once()
    # The failed pass is queued for a retry, and the two behind it are still queued, unabsorbed.
    assert _passes(db, support) == [("queued", 1), ("queued", 0), ("queued", 0)]


def test_a_joined_pass_waits_for_the_transaction_that_joined_it(
    postgres_db: Database, clock: FrozenClock
) -> None:
    """PostgreSQL: while a transaction that queued a conversation holds the pass it joined, no
    worker can claim that pass (it would miss the conversation); once it commits, the pass runs
    and assigns it."""
    from max_server.handlers.routing import enqueue_assign
    from max_server.jobs import queue

    db = postgres_db
    people = People(db)
    support = people.team("support")
    ana, _ = people.user("agent", "Ana", capacity=5)
    people.join(support, ana)
    _enqueue_pass(db, support)
    conversation = queued_conversation(db, support, clock, "cliente")
    joining = db.session()
    enqueue_assign(joining, support.id)  # joins the queued pass and holds it
    assert _passes(db, support) == [("queued", 0)]
    online(db, ana, clock=clock)  # asks for a pass too: the held one is skipped, so a new one
    assert _passes(db, support) == [("queued", 0), ("queued", 0)]
    with db.session() as session:
        # The held pass is skipped, and the one behind it waits for it (ordered): nothing to claim.
        assert queue.claim(session, "w", clock.now(), 60, limit=5) == []
        session.rollback()
    joining.commit()
    joining.close()
    with db.session() as session:
        claimed = queue.claim(session, "w", clock.now(), 60, limit=5)
        session.commit()
    assert [job.kind for job in claimed] == ["routing.assign"]
    assign(db, support, clock)
    assert state(db, conversation).assignee_id == ana.id
