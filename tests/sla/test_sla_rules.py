"""The pure SLA rules: deadlines on either clock, and what the monitor does at an instant."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from max_server.domain.hours import Interval, Schedule
from max_server.domain.sla import CycleState, Policy, deadlines, elapsed, next_check, step

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
POLICY = Policy(frt_target_s=600, resolution_target_s=1500, escalation_after_s=900)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def cycle(**changes: object) -> CycleState:
    base: dict[str, object] = {
        "open": True,
        "responded": False,
        "due": {"frt": minutes(10), "resolution": minutes(25)},
    }
    return CycleState(**{**base, **changes})  # type: ignore[arg-type]


def test_deadlines_on_the_wall_clock_and_on_business_hours() -> None:
    plan = deadlines(POLICY, None, T0)
    assert (plan.due["frt"], plan.warn["frt"], plan.escalate_at) == (minutes(10), minutes(8), minutes(15))
    mexico = ZoneInfo("America/Mexico_City")
    week = Schedule("America/Mexico_City", tuple(Interval(d, time(9), time(18)) for d in range(5)))
    friday = datetime(2026, 3, 6, 17, 55, tzinfo=mexico)
    business = Policy(600, 3600, None, business_hours_only=True)
    plan = deadlines(business, week, friday)
    assert plan.due["frt"] == datetime(2026, 3, 9, 9, 5, tzinfo=mexico)
    assert plan.escalate_at is None
    assert elapsed(business, week, friday, datetime(2026, 3, 9, 9, 5, tzinfo=mexico)) == 600
    # Without business_hours_only the calendar is ignored.
    assert deadlines(Policy(600, 3600), week, friday).due["frt"] == friday + timedelta(minutes=10)


def test_warn_then_breach_then_escalate() -> None:
    plan = deadlines(POLICY, None, T0)
    assert step(cycle(), plan.warn, plan.escalate_at, minutes(7)).warn == ()
    warned = step(cycle(), plan.warn, plan.escalate_at, minutes(8))
    assert (warned.warn, warned.breach, warned.next_check) == (("frt",), (), minutes(10))
    breached = step(cycle(warned=frozenset({"frt"})), plan.warn, plan.escalate_at, minutes(10))
    assert (breached.breach, breached.escalate, breached.next_check) == (("frt",), False, minutes(15))
    state = cycle(warned=frozenset({"frt"}), outcomes={"frt": False})
    escalated = step(state, plan.warn, plan.escalate_at, minutes(15))
    assert (escalated.escalate, escalated.next_check) == (True, minutes(20))  # the resolution warning


def test_a_warning_found_late_becomes_the_breach() -> None:
    plan = deadlines(POLICY, None, T0)
    late = step(cycle(), plan.warn, plan.escalate_at, minutes(11))
    assert (late.warn, late.breach) == ((), ("frt",))


def test_no_escalation_within_the_sla_or_once_fulfilled() -> None:
    plan = deadlines(POLICY, None, T0)
    answered = cycle(responded=True, outcomes={"frt": True})
    assert step(answered, plan.warn, plan.escalate_at, minutes(16)).escalate is False
    answered_late = cycle(responded=True, outcomes={"frt": False}, warned=frozenset({"frt"}))
    assert step(answered_late, plan.warn, plan.escalate_at, minutes(16)).escalate is False
    assert (
        step(
            cycle(escalated=True, outcomes={"frt": False}), plan.warn, plan.escalate_at, minutes(16)
        ).escalate
        is False
    )


def test_nothing_pending_means_no_next_check() -> None:
    plan = deadlines(POLICY, None, T0)
    assert next_check(cycle(open=False), plan.warn, plan.escalate_at) is None
    done = cycle(responded=True, outcomes={"frt": True, "resolution": True})
    assert next_check(done, plan.warn, plan.escalate_at) is None
    assert next_check(cycle(due={"frt": None, "resolution": None}), {}, None) is None
