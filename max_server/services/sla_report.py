"""SLA compliance reports and the violations list (supervisors and admins).

Compliance per team and metric = met ÷ (met + breached) over the outcomes whose deadline fell in
the period (DESIGN §6): a metric still running, or cancelled (a conversation closed as spam or
duplicate before its deadline), counts neither way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from max_server.access import Actor
from max_server.errors import not_found
from max_server.models import Conversation, SlaOutcome, SlaTarget, SlaViolation, Team
from max_server.schemas import (
    SlaCompliance,
    SlaMetricReport,
    SlaReport,
    SlaViolationPublic,
    TeamRef,
)
from max_server.services.pagination import clamp_limit
from max_server.services.teams import find_team

METRICS = ("frt", "resolution")
PRIORITIES = ("urgent", "high", "normal", "low")
REPORT_VIOLATIONS = 100


def present_violations(session: Session, rows: Sequence[SlaViolation]) -> list[SlaViolationPublic]:
    conversation_ids = sorted({r.conversation_id for r in rows})
    team_ids = sorted({r.team_id for r in rows if r.team_id is not None})
    numbers: dict[int | None, int] = {}
    if conversation_ids:
        query = select(col(Conversation.id), col(Conversation.number)).where(
            col(Conversation.id).in_(conversation_ids)
        )
        numbers = dict(session.exec(query).all())
    teams = (
        {t.id: t for t in session.exec(select(Team).where(col(Team.id).in_(team_ids)))} if team_ids else {}
    )
    return [
        SlaViolationPublic.model_validate(
            {
                **row.model_dump(),
                "conversation_number": numbers.get(row.conversation_id),
                "team": TeamRef.model_validate(teams[row.team_id]) if row.team_id in teams else None,
            }
        )
        for row in rows
    ]


def _team_for(session: Session, actor: Actor, team_ref: str) -> Team:
    """A team the actor may report on: any for admins, their own teams for others (another
    team is not found, as with conversations)."""
    team = find_team(session, team_ref)
    if not actor.is_admin and not actor.belongs_to(team.id):
        raise not_found("team", team_ref)
    return team


def list_violations(
    session: Session,
    actor: Actor,
    *,
    team_ref: str | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    limit: int | None = None,
) -> tuple[list[SlaViolationPublic], int | None]:
    """Newest first; returns the page and the id to continue before (or None)."""
    size = clamp_limit(limit)
    query = select(SlaViolation)
    if team_ref:
        query = query.where(SlaViolation.team_id == _team_for(session, actor, team_ref).id)
    elif not actor.is_admin:
        query = query.where(col(SlaViolation.team_id).in_(sorted(actor.teams)))
    if since is not None:
        query = query.where(col(SlaViolation.detected_at) >= since)
    if before_id is not None:
        query = query.where(col(SlaViolation.id) < before_id)
    rows = list(session.exec(query.order_by(col(SlaViolation.id).desc()).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return present_violations(session, rows), (rows[-1].id if more and rows else None)


def _compliance(met: int, breached: int) -> float | None:
    total = met + breached
    return round(100.0 * met / total, 2) if total else None


def report(session: Session, team: Team, days: int, now: datetime) -> SlaReport:
    """The seed's dashboard for one team over the last ``days`` days."""
    since = now - timedelta(days=days)
    counts: dict[tuple[str, str], dict[bool, int]] = {}
    rows = session.exec(
        select(SlaOutcome.metric, SlaOutcome.priority, SlaOutcome.met, func.count())
        .where(
            SlaOutcome.team_id == team.id,
            col(SlaOutcome.due_at) >= since,
            col(SlaOutcome.due_at) <= now,
        )
        .group_by(col(SlaOutcome.metric), col(SlaOutcome.priority), col(SlaOutcome.met))
    )
    for metric, priority, was_met, count in rows:
        counts.setdefault((metric, priority), {True: 0, False: 0})[bool(was_met)] += int(count)
    targets = {
        row.metric: row.compliance_pct
        for row in session.exec(select(SlaTarget).where(SlaTarget.team_id == team.id))
    }
    metrics: dict[str, SlaMetricReport] = {}
    for metric in METRICS:
        by_priority: dict[str, SlaCompliance] = {}
        met_total = breached_total = 0
        for priority in PRIORITIES:
            found = counts.get((metric, priority))
            if not found:
                continue
            met, breached = found[True], found[False]
            met_total += met
            breached_total += breached
            by_priority[priority] = SlaCompliance(
                met=met, breached=breached, compliance_pct=_compliance(met, breached)
            )
        pct = _compliance(met_total, breached_total)
        target = targets.get(metric)
        metrics[metric] = SlaMetricReport(
            met=met_total,
            breached=breached_total,
            compliance_pct=pct,
            target_pct=target,
            meets_target=None if pct is None or target is None else pct >= target,
            by_priority=by_priority,
        )
    in_period = (
        SlaViolation.team_id == team.id,
        col(SlaViolation.due_at) >= since,
        col(SlaViolation.due_at) <= now,
    )
    total = session.exec(select(func.count()).select_from(SlaViolation).where(*in_period)).one()
    violations = list(
        session.exec(
            select(SlaViolation)
            .where(*in_period)
            .order_by(col(SlaViolation.due_at).desc(), col(SlaViolation.id).desc())
            .limit(REPORT_VIOLATIONS)
        )
    )
    return SlaReport(
        team=TeamRef.model_validate(team),
        days=days,
        since=since,
        until=now,
        metrics=metrics,
        violations=present_violations(session, violations),
        violations_total=int(total),
    )


def reports(
    session: Session, actor: Actor, team_ref: str | None, days: int, now: datetime
) -> list[SlaReport]:
    """One team's report, or every team's the actor may report on (admins: all)."""
    if team_ref:
        teams = [_team_for(session, actor, team_ref)]
    else:
        query = select(Team).order_by(col(Team.slug))
        if not actor.is_admin:
            query = query.where(col(Team.id).in_(sorted(actor.teams)))
        teams = list(session.exec(query))
    return [report(session, team, days, now) for team in teams]
