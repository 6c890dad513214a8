"""SLA deadlines and the monitor, end to end: customers write over signed webhooks, agents answer
over the API, and the monitor runs as its periodic job, one tick per minute of a frozen clock."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs.worker import Worker
from max_server.models import SlaOutcome
from max_server.schemas import HoursSet
from max_server.services import hours as hours_service
from max_server.services import sla_monitor
from tests.channels.conftest import WhatsApp
from tests.conftest import People
from tests.sla.desk import ADMIN, Desk
from tests.support.live import LiveServer

MEXICO = ZoneInfo("America/Mexico_City")
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def desk(
    db: Database, live: LiveServer, whatsapp: WhatsApp, worker: Worker, clock: FrozenClock, people: People
) -> Desk:
    return Desk(db=db, live=live, whatsapp=whatsapp, worker=worker, clock=clock, people=people)


def outcomes(db: Database, conversation_id: int | None) -> list[tuple[int, str, bool, int | None]]:
    with db.session(write=False) as session:
        rows = session.exec(select(SlaOutcome).where(SlaOutcome.conversation_id == conversation_id))
        return sorted((r.cycle, r.metric, r.met, r.actual_s) for r in rows)


def test_a_business_hours_policy_counts_only_open_time(desk: Desk, db: Database, clock: FrozenClock) -> None:
    with db.session() as session:
        hours_service.set_days(
            session, ADMIN, "support", HoursSet(days=[0, 1, 2, 3, 4], opens="09:00", closes="18:00")
        )
    desk.policy("normal", frt=600, resolution=3600, business=True)
    desk.worker.drain()
    clock.set(datetime(2026, 3, 6, 17, 55, tzinfo=MEXICO))  # a Friday, five minutes before closing
    conversation = desk.customer_writes("5215500000001")
    assert conversation.frt_due_at == datetime(2026, 3, 9, 9, 5, tzinfo=MEXICO)  # Monday, not Friday 18:05
    assert conversation.resolution_due_at == datetime(2026, 3, 9, 9, 55, tzinfo=MEXICO)
    assert conversation.sla_next_check_at == datetime(2026, 3, 9, 9, 3, tzinfo=MEXICO)  # 80 % of 10 minutes

    clock.set(datetime(2026, 3, 7, 12, 0, tzinfo=MEXICO))  # Saturday: nothing is due
    desk.run_monitor()
    assert desk.events(conversation) == Counter()
    clock.set(datetime(2026, 3, 9, 9, 4, tzinfo=MEXICO))
    desk.run_monitor()
    assert desk.events(conversation) == Counter({"sla.warning:frt": 1})
    clock.set(datetime(2026, 3, 9, 9, 5, tzinfo=MEXICO))
    desk.run_monitor()
    assert desk.events(conversation) == Counter({"sla.warning:frt": 1, "sla.violated:frt:1": 1})
    [violation] = desk.violations(conversation)
    assert (violation.target_s, violation.actual_s) == (600, 600)  # business seconds, not 63 hours

    # The same policy on the wall clock: the job recomputes the team's open conversations.
    other = desk.customer_writes("5215500000002")
    desk.policy("normal", frt=600, resolution=3600, business=False)
    desk.worker.drain()
    assert desk.reload(other).frt_due_at == datetime(2026, 3, 9, 9, 15, tzinfo=MEXICO)
    clock.set(datetime(2026, 3, 6, 17, 55, tzinfo=MEXICO))
    third = desk.customer_writes("5215500000003")
    assert third.frt_due_at == datetime(2026, 3, 6, 18, 5, tzinfo=MEXICO)


def test_a_new_time_zone_on_the_team_moves_business_hours_deadlines(
    desk: Desk, db: Database, clock: FrozenClock
) -> None:
    with db.session() as session:
        hours_service.set_days(
            session, ADMIN, "support", HoursSet(days=[0, 1, 2, 3, 4], opens="09:00", closes="18:00")
        )
    desk.policy("normal", frt=600, resolution=3600, business=True)
    desk.worker.drain()
    clock.set(datetime(2026, 3, 6, 17, 55, tzinfo=MEXICO))  # Friday 18:55 in New York: closed there
    conversation = desk.customer_writes("5215500000009")
    assert conversation.frt_due_at == datetime(2026, 3, 9, 9, 5, tzinfo=MEXICO)

    changed = desk.api(
        "PATCH", "/api/v1/teams/support", desk.admin_token, json={"timezone": "America/New_York"}
    )
    assert (changed.status_code, changed.json()["timezone"]) == (200, "America/New_York")
    desk.worker.drain()
    new_york = ZoneInfo("America/New_York")
    moved = desk.reload(conversation)
    assert moved.frt_due_at == datetime(2026, 3, 9, 9, 10, tzinfo=new_york)  # Monday 09:00 there + 10 min
    assert moved.resolution_due_at == datetime(2026, 3, 9, 10, 0, tzinfo=new_york)
    assert moved.sla_next_check_at == datetime(2026, 3, 9, 9, 8, tzinfo=new_york)

    unknown = desk.api("PATCH", "/api/v1/teams/support", desk.admin_token, json={"timezone": "Mars/Base"})
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (422, "invalid_timezone")
    assert desk.reload(conversation).frt_due_at == moved.frt_due_at


def test_thirty_minutes_each_warning_violation_and_escalation_once(
    desk: Desk, db: Database, clock: FrozenClock
) -> None:
    desk.policy("normal", frt=600, resolution=1500, escalate=900)  # 10 min, 25 min, escalate after 15
    desk.policy("high", frt=120, resolution=600)
    clock.set(T0)
    late = desk.customer_writes("5215511111111")  # nobody answers this one for half an hour
    served = desk.customer_writes("5215522222222")  # answered at 5 minutes, solved at 12
    assert (late.frt_due_at, late.resolution_due_at) == (
        T0 + timedelta(minutes=10),
        T0 + timedelta(minutes=25),
    )
    assert late.sla_next_check_at == T0 + timedelta(minutes=8)

    for minute in range(1, 31):
        clock.set(T0 + timedelta(minutes=minute))
        if minute == 5:
            desk.reply(served)
        if minute == 12:
            desk.close(served)
        if minute == 16:  # frozen once escalated: a new priority moves no deadline
            changed = desk.api(
                "PATCH", f"/api/v1/conversations/{late.id}", desk.supervisor_token, json={"priority": "high"}
            )
            assert changed.status_code == 200
        desk.run_monitor()
        desk.run_monitor()  # the same tick again changes nothing
        if minute == 15:
            escalated = desk.reload(late)
            assert (escalated.priority, escalated.escalated_at) == ("urgent", T0 + timedelta(minutes=15))

    assert desk.events(late) == Counter(
        {
            "sla.warning:frt": 1,
            "sla.violated:frt:1": 1,
            "conversation.escalated": 1,
            "sla.warning:resolution": 1,
            "sla.violated:resolution:1": 1,
        }
    )
    assert desk.events(served) == Counter()
    after = desk.reload(late)
    assert (after.frt_due_at, after.resolution_due_at) == (
        T0 + timedelta(minutes=10),
        T0 + timedelta(minutes=25),
    )
    assert after.priority == "high"
    assert after.sla_next_check_at is None  # nothing left to watch in this cycle
    assert [
        (v.kind, v.cycle, v.priority, v.target_s, v.actual_s, v.escalated) for v in desk.violations(late)
    ] == [
        ("frt", 1, "normal", 600, 600, True),
        ("resolution", 1, "normal", 1500, 1500, True),
    ]
    [notice] = desk.notifications("conversation.escalated")
    assert notice.user_id == desk.supervisor_id
    assert notice.text == f"Conversation #{late.number} escalated: first response target missed"
    assert outcomes(db, served.id) == [(1, "frt", True, 300), (1, "resolution", True, 720)]
    with db.session() as session:
        assert sla_monitor.sweep_batch(session, clock.now()) == 0  # nothing is due

    # The late answer and the close show the real figures on the violations.
    clock.set(T0 + timedelta(minutes=31))
    desk.reply(late)
    clock.set(T0 + timedelta(minutes=32))
    desk.close(late)
    assert [(v.kind, v.actual_s) for v in desk.violations(late)] == [("frt", 1860), ("resolution", 1920)]

    # The customer writes again: a new cycle (priority high now) that can breach again.
    clock.set(T0 + timedelta(minutes=33))
    reopened = desk.customer_writes("5215511111111", "sigue sin funcionar")
    assert (reopened.id, reopened.cycle, reopened.escalated_at) == (late.id, 2, None)
    assert reopened.frt_due_at == T0 + timedelta(minutes=35)
    for minute in range(34, 38):
        clock.set(T0 + timedelta(minutes=minute))
        desk.run_monitor()
    counted = desk.events(late)
    assert counted["sla.violated:frt:2"] == 1
    assert counted["sla.violated:frt:1"] == 1
    assert counted["conversation.escalated"] == 1  # the high policy does not escalate
    assert [(v.kind, v.cycle, v.priority) for v in desk.violations(late)][-1] == ("frt", 2, "high")


def test_a_reopened_cycle_goes_back_to_the_priority_it_had_before_the_escalation(
    desk: Desk, db: Database, clock: FrozenClock
) -> None:
    desk.policy("normal", frt=600, resolution=1500, escalate=900)
    desk.policy("urgent", frt=180, resolution=600)
    clock.set(T0)
    late = desk.customer_writes("5215577777777")
    for minute in (8, 10, 15):
        clock.set(T0 + timedelta(minutes=minute))
        desk.run_monitor()
    assert (desk.reload(late).priority, desk.reload(late).escalated_at) == (
        "urgent",
        T0 + timedelta(minutes=15),
    )
    clock.set(T0 + timedelta(minutes=16))
    desk.close(late)

    clock.set(T0 + timedelta(minutes=20))
    again = desk.customer_writes("5215577777777", "otra vez yo")
    assert (again.id, again.cycle, again.priority, again.escalated_at) == (late.id, 2, "normal", None)
    start = T0 + timedelta(minutes=20)
    assert (again.frt_due_at, again.resolution_due_at) == (  # the normal policy, not the urgent one
        start + timedelta(minutes=10),
        start + timedelta(minutes=25),
    )
    for minute in (23, 28, 30):  # 3 minutes would be the urgent FRT: nothing is due yet then
        clock.set(T0 + timedelta(minutes=minute))
        desk.run_monitor()
    assert [(v.cycle, v.kind, v.priority, v.target_s) for v in desk.violations(late)] == [
        (1, "frt", "normal", 600),
        (2, "frt", "normal", 600),
    ]
    # A priority someone chose after the escalation is theirs: the next cycle keeps it.
    for minute in (35, 36):
        clock.set(T0 + timedelta(minutes=minute))
        desk.run_monitor()
    assert desk.reload(late).priority == "urgent"  # the second cycle escalated too
    chosen = desk.api(
        "PATCH", f"/api/v1/conversations/{late.id}", desk.supervisor_token, json={"priority": "high"}
    )
    assert chosen.status_code == 200
    desk.close(late)
    reopened = desk.api("POST", f"/api/v1/conversations/{late.id}/reopen", desk.supervisor_token)
    assert (reopened.status_code, reopened.json()["priority"]) == (200, "high")


def test_sla_metrics_count_what_was_committed_only(desk: Desk, db: Database, clock: FrozenClock) -> None:
    from max_server import metrics

    def counted() -> tuple[float, float]:
        def value(name: str) -> float:
            return metrics.REGISTRY.get_sample_value(name, {"metric": "frt"}) or 0.0

        return value("max_sla_warnings_total"), value("max_sla_violations_total")

    desk.policy("normal", frt=600, resolution=3600)
    clock.set(T0)
    desk.customer_writes("5215588888888")
    clock.set(T0 + timedelta(minutes=8))
    before = counted()
    with db.session() as session:  # a run that fails after publishing: nothing happened
        assert sla_monitor.sweep_batch(session, clock.now()) == 1
        session.rollback()
    assert counted() == before
    desk.run_monitor()  # the retry commits: the warning counts once
    assert counted() == (before[0] + 1, before[1])
    clock.set(T0 + timedelta(minutes=10))
    with db.session() as session:
        assert sla_monitor.sweep_batch(session, clock.now()) == 1
        session.rollback()
    desk.run_monitor()
    desk.run_monitor()
    assert counted() == (before[0] + 1, before[1] + 1)


def test_breaches_the_monitor_has_not_seen_yet_are_recorded_by_the_change(
    desk: Desk, db: Database, clock: FrozenClock
) -> None:
    desk.policy("normal", frt=600, resolution=1800)
    clock.set(T0)
    answered_late = desk.customer_writes("5215533333333")
    closed_unanswered = desk.customer_writes("5215544444444")
    spam = desk.customer_writes("5215555555555")
    clock.set(T0 + timedelta(minutes=3))
    desk.close(spam, "spam")  # before any deadline: counts neither way
    clock.set(T0 + timedelta(minutes=10, seconds=30))  # past the FRT deadline; no monitor tick yet
    desk.reply(answered_late)
    desk.close(closed_unanswered)
    assert desk.events(answered_late) == Counter({"sla.violated:frt:1": 1})
    assert desk.events(closed_unanswered) == Counter({"sla.violated:frt:1": 1})
    assert outcomes(db, answered_late.id) == [(1, "frt", False, 630)]
    assert outcomes(db, closed_unanswered.id) == [(1, "frt", False, 630), (1, "resolution", True, 630)]
    assert outcomes(db, spam.id) == []
    desk.run_monitor()  # the monitor finds nothing more to record
    assert desk.events(answered_late) == Counter({"sla.violated:frt:1": 1})
    assert desk.reload(answered_late).sla_next_check_at == T0 + timedelta(minutes=24)  # resolution warning
    assert desk.reload(closed_unanswered).sla_next_check_at is None


def test_team_and_priority_changes_recompute_and_no_policy_means_nothing_pending(
    desk: Desk, db: Database, clock: FrozenClock, people: People
) -> None:
    desk.policy("normal", frt=600, resolution=1800)
    desk.policy("urgent", frt=180, resolution=900)
    people.team("billing")
    clock.set(T0)
    conversation = desk.customer_writes("5215566666666")
    clock.set(T0 + timedelta(minutes=1))
    raised = desk.api(
        "PATCH",
        f"/api/v1/conversations/{conversation.id}",
        desk.supervisor_token,
        json={"priority": "urgent"},
    )
    assert raised.json()["frt_due_at"] == "2026-03-02T15:03:00Z"  # from the cycle's start, not now
    moved = desk.api(
        "POST",
        f"/api/v1/conversations/{conversation.id}/transfer",
        desk.supervisor_token,
        json={"team": "billing"},
    )
    assert moved.status_code == 200
    assert (moved.json()["frt_due_at"], moved.json()["resolution_due_at"]) == (None, None)
    assert desk.reload(conversation).sla_next_check_at is None
