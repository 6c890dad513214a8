"""Teams' business hours, holidays and after-hours message: admins change them, anyone reads."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from max_server.api.deps import AdminActor, AgentActor, SessionDep
from max_server.errors import Unprocessable
from max_server.schemas import (
    HolidayCreate,
    HolidayImport,
    HolidayImported,
    HolidayList,
    HolidayPublic,
    HoursCheck,
    HoursMessageSet,
    HoursPublic,
    HoursReplace,
    HoursSet,
)
from max_server.services import hours

router = APIRouter(prefix="/api/v1/hours", tags=["business hours"])


@router.get("/{team}", response_model=HoursPublic)
def show_hours(session: SessionDep, actor: AgentActor, team: str) -> HoursPublic:
    """The team's time zone, weekly intervals, upcoming holidays and after-hours message."""
    return hours.show(session, team)


@router.put("/{team}", response_model=HoursPublic)
def replace_hours(session: SessionDep, actor: AdminActor, team: str, body: HoursReplace) -> HoursPublic:
    """Replaces the whole week (an empty list: always open)."""
    return hours.replace_week(session, actor, team, body)


@router.post("/{team}/days", response_model=HoursPublic)
def set_days(session: SessionDep, actor: AdminActor, team: str, body: HoursSet) -> HoursPublic:
    """Sets some days' hours: replaces their intervals, or adds one with ``add``."""
    return hours.set_days(session, actor, team, body)


@router.delete("/{team}", response_model=HoursPublic)
def clear_hours(
    session: SessionDep,
    actor: AdminActor,
    team: str,
    days: Annotated[list[int] | None, Query(description="only these weekdays (0 = Monday)")] = None,
) -> HoursPublic:
    """Removes the weekly hours (holidays stay): with none, the team is always open."""
    return hours.clear(session, actor, team, days)


@router.put("/{team}/message", response_model=HoursPublic)
def set_message(session: SessionDep, actor: AdminActor, team: str, body: HoursMessageSet) -> HoursPublic:
    """The after-hours reply, with the canned-response context variables; empty removes it."""
    return hours.set_message(session, actor, team, body.message)


@router.get("/{team}/check", response_model=HoursCheck)
def check_hours(
    session: SessionDep,
    actor: AgentActor,
    team: str,
    at: Annotated[dt.datetime | None, Query(description="ISO 8601 with an offset; default now")] = None,
) -> HoursCheck:
    if at is not None and at.tzinfo is None:
        raise Unprocessable(
            "give `at` with its UTC offset, e.g. 2027-01-04T09:00:00-06:00", code="naive_time"
        )
    return hours.check(session, team, at)


@router.get("/{team}/holidays", response_model=HolidayList)
def list_holidays(
    session: SessionDep,
    actor: AgentActor,
    team: str,
    year: Annotated[int | None, Query(ge=1970, le=2100)] = None,
) -> HolidayList:
    return HolidayList(
        holidays=[HolidayPublic.model_validate(h) for h in hours.list_holidays(session, team, year)]
    )


@router.post("/{team}/holidays", response_model=HolidayPublic, status_code=status.HTTP_201_CREATED)
def add_holiday(session: SessionDep, actor: AdminActor, team: str, body: HolidayCreate) -> HolidayPublic:
    return hours.add_holiday(session, actor, team, body.date, body.name)


@router.post("/{team}/holidays/import", response_model=HolidayImported)
def import_holidays(
    session: SessionDep, actor: AdminActor, team: str, body: HolidayImport
) -> HolidayImported:
    """A country's (and subdivision's) public holidays for a year, from the ``holidays`` package."""
    return hours.import_holidays(
        session, actor, team, body.country, body.year, subdivision=body.subdivision, language=body.language
    )


@router.delete("/{team}/holidays/{day}", status_code=status.HTTP_204_NO_CONTENT)
def remove_holiday(session: SessionDep, actor: AdminActor, team: str, day: dt.date) -> Response:
    hours.remove_holiday(session, actor, team, day)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
