"""SLA policies (per team and priority) and compliance targets (per team and metric).

A change to a team's policies or calendar asks for its open conversations' deadlines to be
recomputed by a job (``sla.recompute``), so a large team never makes an admin's request slow.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from max_server import clock
from max_server.access import Actor
from max_server.errors import Conflict, Forbidden, not_found
from max_server.jobs import queue
from max_server.models import SlaPolicy, SlaTarget, Team
from max_server.schemas import SlaPolicyPublic, SlaPolicySet, SlaTargetsPublic, SlaTargetsSet, TeamRef
from max_server.services import audit
from max_server.services.teams import find_team

RECOMPUTE = "sla.recompute"


def request_recompute(session: Session, team_id: int, priority: str | None = None) -> None:
    """Queues the recomputation of the deadlines of ``team_id``'s open conversations (of one
    priority, or all), in the caller's transaction."""
    queue.enqueue(session, RECOMPUTE, {"team_id": team_id, "priority": priority})


def _require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Forbidden("only admins change SLA policies and targets", code="insufficient_role")


def present_policies(session: Session, rows: list[SlaPolicy]) -> list[SlaPolicyPublic]:
    teams = _teams(session, {row.team_id for row in rows})
    return [
        SlaPolicyPublic.model_validate(
            {**row.model_dump(), "team": TeamRef.model_validate(teams[row.team_id])}
        )
        for row in rows
    ]


def _teams(session: Session, ids: set[int]) -> dict[int, Team]:
    if not ids:
        return {}
    return {t.id: t for t in session.exec(select(Team).where(col(Team.id).in_(sorted(ids)))) if t.id}


def list_policies(session: Session, team_ref: str | None = None) -> list[SlaPolicy]:
    query = select(SlaPolicy)
    if team_ref:
        query = query.where(SlaPolicy.team_id == find_team(session, team_ref).id)
    rows = list(session.exec(query))
    order = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
    teams = _teams(session, {row.team_id for row in rows})
    return sorted(rows, key=lambda r: (teams[r.team_id].slug, order.get(r.priority, 9)))


def set_policy(session: Session, actor: Actor, data: SlaPolicySet) -> SlaPolicy:
    """Creates or replaces the policy for (team, priority)."""
    _require_admin(actor)
    team = find_team(session, data.team)
    assert team.id is not None
    policy = session.exec(
        select(SlaPolicy).where(SlaPolicy.team_id == team.id, SlaPolicy.priority == data.priority)
    ).first()
    if policy is None:
        policy = SlaPolicy(
            team_id=team.id,
            priority=data.priority,
            frt_target_s=data.frt_target_s,
            resolution_target_s=data.resolution_target_s,
        )
    policy.frt_target_s = data.frt_target_s
    policy.resolution_target_s = data.resolution_target_s
    policy.escalation_after_s = data.escalation_after_s
    policy.business_hours_only = data.business_hours_only
    policy.updated_at = clock.now()
    session.add(policy)
    try:
        session.flush()
    except IntegrityError:  # a concurrent admin created it first
        session.rollback()
        raise Conflict("the policy changed meanwhile; try again", code="policy_conflict") from None
    audit.record(session, actor, "sla.policy_set", "team", team.id, data.model_dump())
    request_recompute(session, team.id, data.priority)
    session.commit()
    return policy


def remove_policy(session: Session, actor: Actor, team_ref: str, priority: str) -> None:
    _require_admin(actor)
    team = find_team(session, team_ref)
    assert team.id is not None
    policy = session.exec(
        select(SlaPolicy).where(SlaPolicy.team_id == team.id, SlaPolicy.priority == priority)
    ).first()
    if policy is None:
        raise not_found("SLA policy", f"{team.slug}/{priority}")
    session.delete(policy)
    audit.record(session, actor, "sla.policy_removed", "team", team.id, {"priority": priority})
    request_recompute(session, team.id, priority)
    session.commit()


def targets(session: Session, team_ref: str | None = None) -> list[SlaTargetsPublic]:
    """Each team's compliance targets (every team, or one)."""
    teams = (
        [find_team(session, team_ref)]
        if team_ref
        else list(session.exec(select(Team).order_by(col(Team.slug))))
    )
    ids = [t.id for t in teams if t.id is not None]
    found: dict[tuple[int, str], float] = {}
    if ids:
        for row in session.exec(select(SlaTarget).where(col(SlaTarget.team_id).in_(ids))):
            found[(row.team_id, row.metric)] = row.compliance_pct
    out = []
    for team in teams:
        assert team.id is not None
        out.append(
            SlaTargetsPublic(
                team=TeamRef.model_validate(team),
                frt=found.get((team.id, "frt")),
                resolution=found.get((team.id, "resolution")),
            )
        )
    return out


def set_targets(session: Session, actor: Actor, data: SlaTargetsSet) -> SlaTargetsPublic:
    _require_admin(actor)
    team = find_team(session, data.team)
    assert team.id is not None
    for metric, value in (("frt", data.frt), ("resolution", data.resolution)):
        if value is None:
            continue
        row = session.exec(
            select(SlaTarget).where(SlaTarget.team_id == team.id, SlaTarget.metric == metric)
        ).first()
        if row is None:
            row = SlaTarget(team_id=team.id, metric=metric, compliance_pct=value)
        row.compliance_pct = value
        session.add(row)
    audit.record(session, actor, "sla.targets_set", "team", team.id, data.model_dump())
    session.commit()
    return targets(session, str(team.id))[0]
