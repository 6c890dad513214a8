"""SLA arithmetic, pure: deadlines from a policy (on the team's business calendar when the
policy says so) and what the monitor must do for one conversation cycle at a given instant.

Semantics (DESIGN §6):
* Both clocks start at the cycle's start (the customer's first message of the cycle). First
  response is due ``frt_target_s`` later, resolution ``resolution_target_s`` later; with
  ``business_hours_only`` those are business seconds.
* A warning goes out once per metric at 80 % of its target, unless the deadline has passed by
  the time the monitor looks (then the breach is reported instead).
* A breach is recorded once per cycle and metric, the moment its deadline passes while the
  metric is still pending (no first response yet / still open).
* Escalation happens once per cycle: when ``escalation_after_s`` (same calendar) has passed since
  the cycle's start *and* a breached metric is still unfulfilled (no first response yet, or not
  resolved). A conversation within its SLA is never escalated.
* ``next_check`` is the earliest instant at which one of those could next happen; None when
  nothing is pending.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from max_server.domain.hours import Schedule, add_business_seconds, business_seconds

METRICS = ("frt", "resolution")
WARN_FRACTION = 0.8


@dataclass(frozen=True)
class Policy:
    frt_target_s: int
    resolution_target_s: int
    escalation_after_s: int | None = None
    business_hours_only: bool = False

    def target(self, metric: str) -> int:
        return self.frt_target_s if metric == "frt" else self.resolution_target_s


@dataclass(frozen=True)
class Deadlines:
    due: dict[str, datetime | None]
    warn: dict[str, datetime | None]
    escalate_at: datetime | None = None


def _calendar(policy: Policy, schedule: Schedule | None) -> Schedule | None:
    return schedule if policy.business_hours_only and schedule is not None else None


def after(policy: Policy, schedule: Schedule | None, start: datetime, seconds: float) -> datetime:
    """``start`` plus ``seconds`` on the policy's clock (business or wall)."""
    calendar = _calendar(policy, schedule)
    if calendar is None:
        return start + timedelta(seconds=seconds)
    return add_business_seconds(calendar, start, seconds)


def elapsed(policy: Policy | None, schedule: Schedule | None, start: datetime, end: datetime) -> int:
    """Seconds from ``start`` to ``end`` on the policy's clock, rounded down."""
    calendar = _calendar(policy, schedule) if policy is not None else None
    if calendar is None:
        return max(0, math.floor((end - start).total_seconds()))
    return math.floor(business_seconds(calendar, start, end))


def deadlines(policy: Policy, schedule: Schedule | None, start: datetime) -> Deadlines:
    due: dict[str, datetime | None] = {}
    warn: dict[str, datetime | None] = {}
    for metric in METRICS:
        target = policy.target(metric)
        due[metric] = after(policy, schedule, start, target)
        warn[metric] = after(policy, schedule, start, math.ceil(target * WARN_FRACTION))
    escalate_at = None
    if policy.escalation_after_s:
        escalate_at = after(policy, schedule, start, policy.escalation_after_s)
    return Deadlines(due, warn, escalate_at)


@dataclass(frozen=True)
class CycleState:
    """What is known about one conversation cycle."""

    open: bool
    responded: bool  # a human agent has replied in this cycle
    due: dict[str, datetime | None]  # as stored on the conversation (frozen once escalated)
    warned: frozenset[str] = frozenset()
    outcomes: dict[str, bool] = field(default_factory=dict)  # recorded: metric -> met
    escalated: bool = False

    def pending(self, metric: str) -> bool:
        if not self.open or self.due.get(metric) is None or metric in self.outcomes:
            return False
        return not (metric == "frt" and self.responded)

    def unfulfilled_breach(self) -> bool:
        if not self.open:
            return False
        frt = self.outcomes.get("frt") is False and not self.responded
        return frt or self.outcomes.get("resolution") is False


@dataclass(frozen=True)
class Step:
    warn: tuple[str, ...] = ()
    breach: tuple[str, ...] = ()
    escalate: bool = False
    next_check: datetime | None = None


def next_check(
    state: CycleState, warn: dict[str, datetime | None], escalate_at: datetime | None
) -> datetime | None:
    times: list[datetime] = []
    for metric in METRICS:
        if not state.pending(metric):
            continue
        due = state.due[metric]
        assert due is not None
        warn_at = warn.get(metric)
        if metric not in state.warned and warn_at is not None and warn_at < due:
            times.append(warn_at)
        else:
            times.append(due)
    if not state.escalated and escalate_at is not None and state.unfulfilled_breach():
        times.append(escalate_at)
    return min(times) if times else None


def step(
    state: CycleState, warn: dict[str, datetime | None], escalate_at: datetime | None, now: datetime
) -> Step:
    """What the monitor does now, and when it must look again."""
    warnings: list[str] = []
    breaches: list[str] = []
    for metric in METRICS:
        if not state.pending(metric):
            continue
        due = state.due[metric]
        assert due is not None
        warn_at = warn.get(metric)
        if now >= due:
            breaches.append(metric)
        elif metric not in state.warned and warn_at is not None and now >= warn_at:
            warnings.append(metric)
    after_step = replace(
        state,
        warned=state.warned | set(warnings),
        outcomes={**state.outcomes, **dict.fromkeys(breaches, False)},
    )
    escalate = (
        not state.escalated
        and escalate_at is not None
        and now >= escalate_at
        and after_step.unfulfilled_breach()
    )
    after_step = replace(after_step, escalated=state.escalated or escalate)
    return Step(tuple(warnings), tuple(breaches), escalate, next_check(after_step, warn, escalate_at))
