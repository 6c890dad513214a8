"""SLA policies and targets (admins change them, anyone reads them), and reports and violations
(supervisors and admins)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from max_server import clock
from max_server.api.deps import AdminActor, AgentActor, SessionDep, SupervisorActor
from max_server.errors import Unprocessable
from max_server.schemas import (
    SlaPolicyList,
    SlaPolicyPublic,
    SlaPolicySet,
    SlaReport,
    SlaReportList,
    SlaTargetsList,
    SlaTargetsPublic,
    SlaTargetsSet,
    SlaViolationList,
)
from max_server.services import sla_policies, sla_report
from max_server.services.pagination import cursor_int, encode_cursor

router = APIRouter(prefix="/api/v1/sla", tags=["sla"])


@router.get("/policies", response_model=SlaPolicyList)
def list_policies(session: SessionDep, actor: AgentActor, team: str | None = None) -> SlaPolicyList:
    rows = sla_policies.list_policies(session, team)
    return SlaPolicyList(policies=sla_policies.present_policies(session, rows))


@router.put("/policies", response_model=SlaPolicyPublic)
def set_policy(session: SessionDep, actor: AdminActor, body: SlaPolicySet) -> SlaPolicyPublic:
    """Creates or replaces the policy of (team, priority); open conversations follow it."""
    return sla_policies.present_policies(session, [sla_policies.set_policy(session, actor, body)])[0]


@router.delete("/policies/{team}/{priority}", status_code=status.HTTP_204_NO_CONTENT)
def remove_policy(
    session: SessionDep,
    actor: AdminActor,
    team: str,
    priority: Literal["low", "normal", "high", "urgent"],
) -> Response:
    sla_policies.remove_policy(session, actor, team, priority)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/targets", response_model=SlaTargetsList)
def list_targets(session: SessionDep, actor: AgentActor, team: str | None = None) -> SlaTargetsList:
    return SlaTargetsList(targets=sla_policies.targets(session, team))


@router.put("/targets", response_model=SlaTargetsPublic)
def set_targets(session: SessionDep, actor: AdminActor, body: SlaTargetsSet) -> SlaTargetsPublic:
    """The compliance a team aims for, per metric (the seed's "FRT 95 %, Resolution 90 %")."""
    return sla_policies.set_targets(session, actor, body)


@router.get("/report", response_model=SlaReport | SlaReportList)
def report(
    session: SessionDep,
    actor: SupervisorActor,
    team: Annotated[str | None, Query(description="team slug or id; every team when omitted")] = None,
    days: Annotated[int, Query(ge=1, le=366)] = 7,
) -> SlaReport | SlaReportList:
    """Compliance per metric (met ÷ (met + breached) for deadlines in the period) against the
    team's target, per priority, then the violations. One team: the report; none: every team's,
    as ``{"reports": [...]}``. Supervisors report on their own teams (another team is 404)."""
    found = sla_report.reports(session, actor, team, days, clock.now())
    return found[0] if team else SlaReportList(reports=found)


@router.get("/violations", response_model=SlaViolationList)
def list_violations(
    session: SessionDep,
    actor: SupervisorActor,
    team: str | None = None,
    since: Annotated[dt.datetime | None, Query(description="detected at or after (ISO 8601)")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> SlaViolationList:
    """Newest first; a supervisor's list holds their teams' violations only."""
    if since is not None and since.tzinfo is None:
        raise Unprocessable("give `since` with its UTC offset", code="naive_time")
    rows, next_id = sla_report.list_violations(
        session, actor, team_ref=team, since=since, before_id=cursor_int(cursor), limit=limit
    )
    return SlaViolationList(violations=rows, next_cursor=encode_cursor(id=next_id) if next_id else None)
