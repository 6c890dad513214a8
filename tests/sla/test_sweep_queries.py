"""The monitor's reads: the due rows by the partial index (PostgreSQL's plan says so), and a
fixed number of queries per batch whatever its size (no N+1)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, insert, text
from sqlmodel import col, select

from max_server.access import Actor
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs import registry
from max_server.models import ChannelAccount, Conversation, Customer, Event
from max_server.schemas import SlaPolicySet
from max_server.services import sla_monitor, sla_policies
from tests.conftest import People

ADMIN = Actor.system("tests")
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _conversations(db: Database, team_id: int | None, rows: list[dict[str, Any]]) -> None:
    """Inserts conversations in bulk: one customer each, on one channel account."""
    with db.session() as session:
        account = ChannelAccount(kind="whatsapp", external_id=f"acct-{len(rows)}-{team_id}", name="wa")
        session.add(account)
        session.flush()
        customer_ids = (
            session.execute(
                insert(Customer).returning(col(Customer.id)),
                [{"name": f"c{i}"} for i in range(len(rows))],
            )
            .scalars()
            .all()
        )
        top = session.exec(select(Conversation.number).order_by(col(Conversation.number).desc())).first() or 0
        session.execute(
            insert(Conversation),
            [
                {
                    "number": top + i + 1,
                    "customer_id": customer_id,
                    "channel_account_id": account.id,
                    "team_id": team_id,
                    "status": "queued",
                    "priority": "normal",
                    "required_skills": [],
                    "cycle": 1,
                    "after_hours": False,
                    "rate_limited": False,
                    "created_at": NOW,
                    "updated_at": NOW,
                    **row,
                }
                for i, (customer_id, row) in enumerate(zip(customer_ids, rows, strict=True))
            ],
        )
        session.commit()


def test_the_sweep_reads_due_rows_through_the_partial_index(postgres_db: Database) -> None:
    idle = [{"status": "closed", "closed_at": NOW - timedelta(days=1)} for _ in range(20_000)]
    _conversations(postgres_db, None, idle)
    waiting = [{"sla_next_check_at": NOW + timedelta(minutes=i)} for i in range(300)]
    _conversations(postgres_db, None, waiting)
    with postgres_db.session() as session:
        session.execute(text("ANALYZE conversations"))
        session.commit()
        statement = sla_monitor.due_statement(NOW + timedelta(minutes=5), 200)
        compiled = statement.compile(dialect=session.get_bind().dialect)
        plan = "\n".join(
            row[0]
            for row in session.connection().exec_driver_sql("EXPLAIN " + str(compiled), compiled.params)
        )
    assert "ix_conversations_sla_next_check" in plan, plan
    assert "Seq Scan on conversations" not in plan, plan


@contextmanager
def counting_selects(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_a_batch_costs_the_same_reads_for_five_or_forty_conversations(
    db: Database, people: People, clock: FrozenClock
) -> None:
    registry.load_builtin_handlers()  # escalations notify the change hooks, as in the worker
    clock.set(NOW)
    counts = []
    for size in (5, 40):
        team = people.team(f"t{size}")
        people.join(team, people.user("agent")[0], "supervisor")
        with db.session() as session:
            body = SlaPolicySet(
                team=team.slug,
                priority="normal",
                frt_target_s=600,
                resolution_target_s=3600,
                escalation_after_s=300,
            )
            sla_policies.set_policy(session, ADMIN, body)
        start = NOW - timedelta(minutes=11)
        rows = [
            {
                "cycle_started_at": start,
                "first_message_at": start,
                "frt_due_at": start + timedelta(minutes=10),
                "resolution_due_at": start + timedelta(hours=1),
                "sla_next_check_at": NOW - timedelta(seconds=1),
            }
            for _ in range(size)
        ]
        _conversations(db, team.id, rows)
        with db.session() as session, counting_selects(db) as selects:
            assert sla_monitor.sweep_batch(session, NOW) == size
            session.commit()
        counts.append(len(selects))
        with db.session(write=False) as session:
            violated = session.exec(select(Event).where(Event.type == "sla.violated")).all()
            escalated = session.exec(select(Event).where(Event.type == "conversation.escalated")).all()
        assert (len(violated), len(escalated)) == (sum(c for c in (5, 40) if c <= size),) * 2
    assert counts[0] == counts[1], counts
