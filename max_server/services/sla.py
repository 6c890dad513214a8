"""SLA deadlines on conversations and their outcomes (DESIGN §6, SLA).

:func:`refresh` runs whenever a conversation changes (the ``conversation_rows.on_change`` hook):
it computes ``frt_due_at``/``resolution_due_at`` from the cycle's start when the team, priority
or cycle changes (never once escalated: deadlines are frozen), records the FRT outcome when the
first human reply arrives and the resolution outcome on close, and sets ``sla_next_check_at`` to
the next instant the monitor (``sla_monitor``) has something to do (null: nothing pending).

The arithmetic itself is pure, in ``domain/sla.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from max_server import metrics
from max_server.db import dialect_insert
from max_server.domain import sla as rules
from max_server.domain.hours import Schedule
from max_server.models import Conversation, SlaOutcome, SlaPolicy, SlaViolation, Team
from max_server.services import conversation_rows, events, hours, present
from max_server.services.sla_report import present_violations

BATCH = 200
OPEN = ("queued", "assigned")
CANCELLED_CLOSES = ("spam", "duplicate")  # such closes take no part in resolution compliance
# "rate_limited": a conversation held by the customer rate limit has no deadlines; its clocks
# start when it is released (routing's rate_limits service moves ``cycle_started_at`` then).
STRUCTURAL = frozenset({"created", "team_id", "priority", "cycle", "rate_limited"})
OUTCOMES = frozenset({"first_response_at", "closed_at"})
_V = SlaViolation.__table__  # type: ignore[attr-defined]
_O = SlaOutcome.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Governed:
    """What governs a conversation's current cycle: the priority its deadlines came from, that
    priority's policy, and the team's business calendar."""

    priority: str
    policy: SlaPolicy | None
    schedule: Schedule | None

    @property
    def targets(self) -> rules.Policy | None:
        if self.policy is None:
            return None
        p = self.policy
        return rules.Policy(
            p.frt_target_s, p.resolution_target_s, p.escalation_after_s, p.business_hours_only
        )

    def plan(self, start: datetime) -> rules.Deadlines | None:
        policy = self.targets
        return rules.deadlines(policy, self.schedule, start) if policy else None


class Calendars:
    """Policies and business calendars of the teams of a set of conversations, loaded in bulk."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.policies: dict[tuple[int, str], SlaPolicy] = {}
        self.schedules: dict[int, Schedule] = {}
        self._teams: set[int] = set()

    def load(self, conversations: Iterable[Conversation]) -> Calendars:
        wanted = {c.team_id for c in conversations if c.team_id is not None} - self._teams
        if not wanted:
            return self
        rows = list(self.session.exec(select(SlaPolicy).where(col(SlaPolicy.team_id).in_(sorted(wanted)))))
        for row in rows:
            self.policies[(row.team_id, row.priority)] = row
        business = sorted({row.team_id for row in rows if row.business_hours_only})
        if business:
            teams = self.session.exec(select(Team).where(col(Team.id).in_(business)))
            self.schedules.update(hours.schedules_for(self.session, teams))
        self._teams |= wanted
        return self

    def govern(self, conversation: Conversation, priorities: dict[int, str]) -> Governed:
        assert conversation.id is not None
        priority = priorities.get(conversation.id, conversation.priority)
        team_id = conversation.team_id
        if team_id is None:
            return Governed(priority, None, None)
        return Governed(priority, self.policies.get((team_id, priority)), self.schedules.get(team_id))


def governing_priorities(session: Session, conversations: Sequence[Conversation]) -> dict[int, str]:
    """The priority whose policy governs each conversation's current cycle: its own, or, once
    escalation has raised it to urgent, the one it had when it breached (deadlines are frozen).
    One query, and only when some of them are escalated."""
    found = {c.id: c.priority for c in conversations if c.id is not None}
    escalated = {c.id: c.cycle for c in conversations if c.id is not None and c.escalated_at is not None}
    if escalated:
        rows = session.exec(
            select(col(SlaViolation.conversation_id), col(SlaViolation.cycle), col(SlaViolation.priority))
            .where(col(SlaViolation.conversation_id).in_(sorted(escalated)))
            .order_by(col(SlaViolation.id))
        )
        settled: set[int] = set()
        for conversation_id, cycle, priority in rows:
            if escalated.get(conversation_id) == cycle and conversation_id not in settled:
                found[conversation_id] = priority
                settled.add(conversation_id)
    return found


def cycle_start(conversation: Conversation) -> datetime:
    return conversation.cycle_started_at or conversation.first_message_at or conversation.created_at


def outcomes_of(session: Session, conversations: Sequence[Conversation]) -> dict[int, dict[str, SlaOutcome]]:
    """The recorded outcomes of each conversation's current cycle, in one query."""
    cycles = {c.id: c.cycle for c in conversations if c.id is not None}
    found: dict[int, dict[str, SlaOutcome]] = {cid: {} for cid in cycles}
    if cycles:
        query = select(SlaOutcome).where(col(SlaOutcome.conversation_id).in_(sorted(cycles)))
        for row in session.exec(query):
            if cycles.get(row.conversation_id) == row.cycle:
                found[row.conversation_id][row.metric] = row
    return found


def state(conversation: Conversation, outcomes: dict[str, SlaOutcome]) -> rules.CycleState:
    warned = {"frt": conversation.frt_warned_at, "resolution": conversation.resolution_warned_at}
    return rules.CycleState(
        open=conversation.status != "closed",
        responded=conversation.first_response_at is not None,
        due={"frt": conversation.frt_due_at, "resolution": conversation.resolution_due_at},
        warned=frozenset(metric for metric, at in warned.items() if at is not None),
        outcomes={metric: row.met for metric, row in outcomes.items()},
        escalated=conversation.escalated_at is not None,
    )


def target_of(conversation: Conversation, policy: SlaPolicy | None, metric: str, due: datetime) -> int:
    if policy is not None:
        return policy.frt_target_s if metric == "frt" else policy.resolution_target_s
    return max(0, int((due - cycle_start(conversation)).total_seconds()))


def due_of(conversation: Conversation, metric: str) -> datetime | None:
    return conversation.frt_due_at if metric == "frt" else conversation.resolution_due_at


# Outcomes and breaches --------------------------------------------------------------------
@dataclass(frozen=True)
class Breach:
    conversation: Conversation
    metric: str
    governed: Governed
    actual: int


def _outcome_values(
    conversation: Conversation, metric: str, met: bool, actual: int, governed: Governed, now: datetime
) -> dict[str, object]:
    due = due_of(conversation, metric)
    assert due is not None
    return {
        "conversation_id": conversation.id,
        "cycle": conversation.cycle,
        "team_id": conversation.team_id,
        "priority": governed.priority,
        "metric": metric,
        "target_s": target_of(conversation, governed.policy, metric, due),
        "actual_s": actual,
        "due_at": due,
        "met": met,
        "recorded_at": now,
    }


def _record_outcomes(session: Session, rows: list[dict[str, object]]) -> None:
    if rows:
        # executemany: one cached statement, batched by the driver (a multi-VALUES statement
        # would be compiled afresh for every batch size).
        session.execute(
            dialect_insert(session, _O).on_conflict_do_nothing(
                index_elements=["conversation_id", "cycle", "metric"]
            ),
            rows,
        )


def record_breaches(session: Session, breaches: Sequence[Breach], now: datetime) -> list[SlaViolation]:
    """Records breaches in their conversations' current cycles: a violation and a ``met = false``
    outcome each, at most once per cycle and metric (unique constraints settle repeats and races),
    in two statements whatever their number. Returns copies of the violations that are new."""
    if not breaches:
        return []
    violations = []
    for breach in breaches:
        conversation, governed = breach.conversation, breach.governed
        due = due_of(conversation, breach.metric)
        assert due is not None
        violations.append(
            {
                "conversation_id": conversation.id,
                "cycle": conversation.cycle,
                "policy_id": governed.policy.id if governed.policy is not None else None,
                "team_id": conversation.team_id,
                "priority": governed.priority,
                "kind": breach.metric,
                "target_s": target_of(conversation, governed.policy, breach.metric, due),
                "actual_s": breach.actual,
                "due_at": due,
                "escalated": conversation.escalated_at is not None,
                "detected_at": now,
            }
        )
    inserted = session.execute(
        dialect_insert(session, _V)
        .on_conflict_do_nothing(index_elements=["conversation_id", "cycle", "kind"])
        .returning(*_V.c, sort_by_parameter_order=True),
        violations,
    ).all()
    _record_outcomes(
        session,
        [_outcome_values(b.conversation, b.metric, False, b.actual, b.governed, now) for b in breaches],
    )
    # Plain copies of the new rows (no extra read), in the order of ``breaches``.
    made = {(row.conversation_id, row.kind): SlaViolation.model_construct(**row._mapping) for row in inserted}
    keys = [(b.conversation.id, b.metric) for b in breaches]
    return [made[key] for key in keys if key in made]


def _update_actual(session: Session, conversation: Conversation, metric: str, actual: int) -> None:
    """A breached metric is finally fulfilled: its violation and outcome show the real figure."""
    for table, column in ((SlaViolation, SlaViolation.kind), (SlaOutcome, SlaOutcome.metric)):
        session.execute(
            update(table)
            .where(
                col(table.conversation_id) == conversation.id,
                col(table.cycle) == conversation.cycle,
                col(column) == metric,
            )
            .values(actual_s=actual)
        )


def _fulfil(
    session: Session,
    conversation: Conversation,
    metric: str,
    at: datetime,
    outcomes: dict[str, SlaOutcome],
    governed: Governed,
    now: datetime,
    cancelled: bool = False,
) -> SlaViolation | None:
    """The metric was fulfilled (or its conversation closed) at ``at``: met, breached late, or,
    for a cancelled close before the deadline, not counted."""
    due = due_of(conversation, metric)
    if due is None:
        return None
    actual = rules.elapsed(governed.targets, governed.schedule, cycle_start(conversation), at)
    recorded = outcomes.get(metric)
    if recorded is not None:
        if not recorded.met:
            _update_actual(session, conversation, metric, actual)
        return None
    if at > due:  # breached before the monitor noticed
        new = record_breaches(session, [Breach(conversation, metric, governed, actual)], now)
        return new[0] if new else None
    if not cancelled:
        _record_outcomes(session, [_outcome_values(conversation, metric, True, actual, governed, now)])
    return None


# The change hook --------------------------------------------------------------------------
def refresh(
    session: Session,
    conversation: Conversation,
    fields: frozenset[str],
    now: datetime,
    calendars: Calendars | None = None,
    outcomes: dict[str, SlaOutcome] | None = None,
) -> None:
    """Follows a change of the conversation (see the module's docstring). Caller's transaction."""
    if conversation.id is None or not fields & (STRUCTURAL | OUTCOMES):
        return  # an assignment, say: nothing SLA-related changed
    if conversation.escalated_at is not None and not fields & OUTCOMES:
        return  # frozen: a new team or priority moves nothing (the monitor's escalation is one)
    if conversation.team_id is None and not fields & OUTCOMES:
        # No team, no policy: nothing is due (the common case for a conversation being triaged).
        conversation.frt_due_at = conversation.resolution_due_at = conversation.sla_next_check_at = None
        return
    if conversation.rate_limited and conversation.status != "closed" and not fields & OUTCOMES:
        # Held by the rate limit, not routed: nothing is due until it is released.
        conversation.frt_due_at = conversation.resolution_due_at = conversation.sla_next_check_at = None
        return
    calendars = (calendars or Calendars(session)).load([conversation])
    if outcomes is None:
        # A new conversation has no outcomes yet: skip the query on the ingest path.
        outcomes = {} if "created" in fields else outcomes_of(session, [conversation])[conversation.id]
    governed = calendars.govern(conversation, governing_priorities(session, [conversation]))
    start = cycle_start(conversation)
    if fields & STRUCTURAL and conversation.escalated_at is None and conversation.status != "closed":
        plan = governed.plan(start)
        conversation.frt_due_at = plan.due["frt"] if plan else None
        conversation.resolution_due_at = plan.due["resolution"] if plan else None
    found: list[SlaViolation | None] = []
    if "first_response_at" in fields and conversation.first_response_at is not None:
        at = conversation.first_response_at
        found.append(_fulfil(session, conversation, "frt", at, outcomes, governed, now))
    if "closed_at" in fields and conversation.status == "closed" and conversation.closed_at is not None:
        at, cancelled = conversation.closed_at, conversation.close_reason in CANCELLED_CLOSES
        if conversation.first_response_at is None:  # never answered: a breach if it was due
            found.append(_fulfil(session, conversation, "frt", at, outcomes, governed, now, cancelled=True))
        found.append(_fulfil(session, conversation, "resolution", at, outcomes, governed, now, cancelled))
    breaches = [violation for violation in found if violation is not None]
    if "first_response_at" in fields or "closed_at" in fields:
        session.flush()
        outcomes = outcomes_of(session, [conversation])[conversation.id]
    plan = governed.plan(start)
    conversation.sla_next_check_at = rules.next_check(
        state(conversation, outcomes), plan.warn if plan else {}, plan.escalate_at if plan else None
    )
    session.add(conversation)
    if breaches:
        published = present.conversation(session, conversation).model_dump(mode="json")
        for shown in present_violations(session, breaches):
            events.emit(
                session,
                "sla.violated",
                {"conversation": published, "violation": shown.model_dump(mode="json")},
                to=conversation_rows.audience(conversation),
            )
            metrics.count_after_commit(session, metrics.SLA_VIOLATIONS, shown.kind)


def recompute(
    session: Session, team_id: int, priority: str | None, now: datetime, after_id: int = 0
) -> int | None:
    """Recomputes the deadlines of one batch of the team's open, unescalated conversations (a
    policy or the calendar changed). Returns the last id done, or None when there were none."""
    query = (
        select(Conversation)
        .where(
            Conversation.team_id == team_id,
            col(Conversation.status).in_(OPEN),
            col(Conversation.escalated_at).is_(None),
            col(Conversation.id) > after_id,
        )
        .order_by(col(Conversation.id))
        .limit(BATCH)
        .with_for_update()
    )
    if priority is not None:
        query = query.where(Conversation.priority == priority)
    rows = list(session.exec(query))
    if not rows:
        return None
    calendars = Calendars(session).load(rows)
    outcomes = outcomes_of(session, rows)
    for row in rows:
        assert row.id is not None
        refresh(session, row, frozenset({"priority"}), now, calendars, outcomes[row.id])
    return rows[-1].id
