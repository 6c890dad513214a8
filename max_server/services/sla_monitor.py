"""The SLA monitor's sweep (DESIGN §6, SLA; §10 item 3 is what it must not do).

It reads only conversations with ``sla_next_check_at <= now`` (one partial index), in bounded
batches locked with ``SKIP LOCKED`` (a row someone is changing waits for the next tick), and
loads everything else a batch needs in a handful of set-based queries. Per conversation it warns
once per metric at 80 %, records each breach once per cycle (unique constraints, not hope),
escalates once, then moves ``sla_next_check_at`` on, so it never looks at a row for nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_, update
from sqlmodel import Session, col, select

from max_server import metrics
from max_server.access import Actor
from max_server.domain import sla as rules
from max_server.models import Conversation, SlaViolation
from max_server.services import audit, conversation_rows, events, notifications, present
from max_server.services.sla import (
    BATCH,
    Breach,
    Calendars,
    Governed,
    cycle_start,
    due_of,
    governing_priorities,
    outcomes_of,
    record_breaches,
    state,
    target_of,
)
from max_server.services.sla_report import present_violations

SYSTEM = Actor.system("sla")
_LABELS = {"frt": "first response", "resolution": "resolution"}


def due_statement(now: datetime, limit: int = BATCH) -> Select[Any]:
    """The monitor's only read of conversations: due rows, by the partial index."""
    return (
        select(Conversation)
        .where(col(Conversation.sla_next_check_at).is_not(None), col(Conversation.sla_next_check_at) <= now)
        .order_by(col(Conversation.sla_next_check_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


class _Findings:
    def __init__(self) -> None:
        self.warnings: list[tuple[Conversation, str, Governed]] = []
        self.violations: list[tuple[Conversation, SlaViolation]] = []
        self.escalated: list[tuple[Conversation, list[str]]] = []  # with the breached metrics behind it


def sweep_batch(session: Session, now: datetime, limit: int = BATCH) -> int:
    """One batch of the monitor. Returns how many conversations it looked at. Caller commits."""
    rows: list[Conversation] = list(session.exec(due_statement(now, limit)))  # type: ignore[call-overload]
    if not rows:
        return 0
    by_id = {row.id: row for row in rows}
    calendars = Calendars(session).load(rows)
    outcomes = outcomes_of(session, rows)
    priorities = governing_priorities(session, rows)
    found = _Findings()
    breaches: list[Breach] = []
    for row in rows:
        assert row.id is not None
        if row.status == "closed":
            row.sla_next_check_at = None
            session.add(row)
            continue
        governed = calendars.govern(row, priorities)
        start = cycle_start(row)
        plan = governed.plan(start)
        step = rules.step(
            state(row, outcomes[row.id]), plan.warn if plan else {}, plan.escalate_at if plan else None, now
        )
        for metric in step.warn:
            setattr(row, f"{metric}_warned_at", now)
            found.warnings.append((row, metric, governed))
        actual = rules.elapsed(governed.targets, governed.schedule, start, now)
        breaches += [Breach(row, metric, governed, actual) for metric in step.breach]
        if step.escalate:  # before the breaches are written: they are part of the escalation
            _escalate(session, row, now)
            breached = {m for m, o in outcomes[row.id].items() if not o.met} | set(step.breach)
            found.escalated.append((row, [m for m in rules.METRICS if m in breached]))
        row.sla_next_check_at = step.next_check
        session.add(row)
    found.violations = [(by_id[v.conversation_id], v) for v in record_breaches(session, breaches, now)]
    _mark_escalated(session, [row for row, _ in found.escalated])
    session.flush()
    for row, _ in found.escalated:  # other features (routing) follow the priority change
        conversation_rows.changed(session, row, {"priority"}, now)
    _publish(session, found)
    return len(rows)


def _escalate(session: Session, conversation: Conversation, now: datetime) -> None:
    previous = conversation.priority
    conversation.priority = "urgent"
    conversation.escalated_at = now
    conversation.updated_at = now
    audit.record(
        session,
        SYSTEM,
        "conversation.escalated",
        "conversation",
        conversation.id,
        {"from_priority": previous, "cycle": conversation.cycle},
    )


def _mark_escalated(session: Session, conversations: list[Conversation]) -> None:
    """Violations recorded earlier in the escalated cycles are part of the escalation too."""
    if conversations:
        session.execute(
            update(SlaViolation)
            .where(
                or_(
                    *(
                        and_(col(SlaViolation.conversation_id) == c.id, col(SlaViolation.cycle) == c.cycle)
                        for c in conversations
                    )
                )
            )
            .values(escalated=True)
        )


def _publish(session: Session, found: _Findings) -> None:
    """The batch's events and notifications, with every subject presented in bulk."""
    subjects = {c.id: c for c, _, _ in found.warnings}
    subjects |= {c.id: c for c, _ in found.violations} | {c.id: c for c, _ in found.escalated}
    if not subjects:
        return
    rows = list(subjects.values())
    published = {
        row.id: item.model_dump(mode="json")
        for row, item in zip(rows, present.conversations(session, rows), strict=True)
    }
    shown = present_violations(session, [v for _, v in found.violations])
    for row, metric, governed in found.warnings:
        due = due_of(row, metric)
        assert due is not None
        data = {
            "conversation": published[row.id],
            "metric": metric,
            "due_at": due.isoformat(),
            "target_s": target_of(row, governed.policy, metric, due),
        }
        events.emit(session, "sla.warning", data, to=conversation_rows.audience(row))
        metrics.count_after_commit(session, metrics.SLA_WARNINGS, metric)
    for (row, _), violation in zip(found.violations, shown, strict=True):
        data = {"conversation": published[row.id], "violation": violation.model_dump(mode="json")}
        events.emit(session, "sla.violated", data, to=conversation_rows.audience(row))
        metrics.count_after_commit(session, metrics.SLA_VIOLATIONS, violation.kind)
    supervisors: dict[int | None, list[int]] = {}
    for row, reasons in found.escalated:
        if row.team_id not in supervisors:
            supervisors[row.team_id] = notifications.team_supervisors(session, row.team_id)
        missed = " and ".join(_LABELS[m] for m in reasons) or "SLA"
        notifications.notify(
            session,
            supervisors[row.team_id],
            "conversation.escalated",
            f"Conversation #{row.number} escalated: {missed} target missed",
            {"conversation_id": str(row.id), "number": row.number, "missed": reasons},
        )
        events.emit(session, "conversation.escalated", published[row.id], to=conversation_rows.audience(row))
