"""Wire models for business hours, holidays, SLA policies, targets, violations and reports.

Durations are integer seconds in keys ending ``_s``; compliance figures are percentages.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import Field, field_validator

from max_server.schemas.core import Id, Input, Priority, TeamRef, Wire

SlaMetric = Literal["frt", "resolution"]
_CLOCK = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")


def normalise_clock(value: str) -> str:
    """``9:00`` → ``09:00``; ``24:00`` is midnight (``00:00``, the end of the day)."""
    match = _CLOCK.match(value.strip())
    if not match or (int(match.group(1)) == 24 and match.group(2) != "00"):
        raise ValueError(f"{value!r} is not a time of day: use HH:MM, e.g. 09:00 or 18:30")
    hour = int(match.group(1)) % 24
    return f"{hour:02d}:{match.group(2)}"


# Business hours -------------------------------------------------------------------------
class HoursInterval(Wire):
    weekday: int = Field(ge=0, le=6, description="0 = Monday")
    day: str = Field(description="mon … sun")
    opens: str = Field(description="HH:MM, team time")
    closes: str = Field(description="HH:MM; at or before `opens` means it runs past midnight")
    overnight: bool = False


class IntervalIn(Input):
    weekday: int = Field(ge=0, le=6, description="0 = Monday")
    opens: str
    closes: str

    @field_validator("opens", "closes")
    @classmethod
    def _clock(cls, value: str) -> str:
        return normalise_clock(value)


class HoursPublic(Wire):
    team: TeamRef
    timezone: str
    configured: bool = Field(description="false: no weekly hours, the team counts as always open")
    intervals: list[HoursInterval]
    holidays: list[HolidayPublic] = Field(default=[], description="today's and later ones")
    after_hours_message: str | None = None


class HoursSet(Input):
    """Sets ``days``' hours: replaces those days' intervals, or adds one with ``add``."""

    days: list[int] = Field(min_length=1, description="weekdays, 0 = Monday")
    opens: str
    closes: str
    add: bool = False
    timezone: str | None = None

    @field_validator("opens", "closes")
    @classmethod
    def _clock(cls, value: str) -> str:
        return normalise_clock(value)

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[int]) -> list[int]:
        if any(not 0 <= day <= 6 for day in value):
            raise ValueError("days are 0 (Monday) to 6 (Sunday)")
        return sorted(set(value))


class HoursReplace(Input):
    intervals: list[IntervalIn]
    timezone: str | None = None


class HoursMessageSet(Input):
    message: str | None = Field(None, max_length=4096, description="empty or null removes it")


class HoursCheck(Wire):
    team: str
    at: dt.datetime
    is_open: bool
    next_open: dt.datetime | None = Field(
        description="when it opens next (after the current opening, if open now)"
    )
    next_close: dt.datetime | None = Field(
        description="when the current (or next) opening ends; null if it never closes"
    )


class HolidayPublic(Wire):
    date: dt.date
    name: str = ""


class HolidayCreate(Input):
    date: dt.date
    name: str = Field("", max_length=200)


class HolidayImport(Input):
    country: str = Field(min_length=2, max_length=3, description="ISO 3166 code, e.g. MX")
    subdivision: str | None = Field(None, max_length=10, description="e.g. CMX")
    year: int = Field(ge=1970, le=2100)
    language: str | None = Field(None, max_length=10, description="names' language, e.g. es")


class HolidayList(Wire):
    holidays: list[HolidayPublic]
    next_cursor: str | None = None


class HolidayImported(Wire):
    added: int
    existing: int
    holidays: list[HolidayPublic]


# SLA policies and targets ---------------------------------------------------------------
class SlaPolicyPublic(Wire):
    id: Id
    team: TeamRef
    priority: Priority
    frt_target_s: int
    resolution_target_s: int
    escalation_after_s: int | None = None
    business_hours_only: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class SlaPolicySet(Input):
    team: str = Field(min_length=1, description="team slug or id")
    priority: Priority
    frt_target_s: int = Field(gt=0)
    resolution_target_s: int = Field(gt=0)
    escalation_after_s: int | None = Field(None, gt=0)
    business_hours_only: bool = False


class SlaPolicyList(Wire):
    policies: list[SlaPolicyPublic]
    next_cursor: str | None = None


class SlaTargetsSet(Input):
    team: str = Field(min_length=1)
    frt: float | None = Field(None, ge=0, le=100, description="compliance %, e.g. 95")
    resolution: float | None = Field(None, ge=0, le=100)


class SlaTargetsPublic(Wire):
    team: TeamRef
    frt: float | None = None
    resolution: float | None = None


class SlaTargetsList(Wire):
    targets: list[SlaTargetsPublic]
    next_cursor: str | None = None


# What the monitor found -----------------------------------------------------------------
class SlaViolationPublic(Wire):
    id: Id
    conversation_id: Id
    conversation_number: int | None = None
    cycle: int
    team: TeamRef | None = None
    priority: Priority
    kind: SlaMetric
    target_s: int
    actual_s: int = Field(description="the metric's value: time to first response or to close")
    due_at: dt.datetime
    detected_at: dt.datetime
    escalated: bool


class SlaViolationList(Wire):
    violations: list[SlaViolationPublic]
    next_cursor: str | None = None


class SlaCompliance(Wire):
    met: int
    breached: int
    compliance_pct: float | None = Field(description="met ÷ (met + breached) × 100; null if none")


class SlaMetricReport(SlaCompliance):
    target_pct: float | None = None
    meets_target: bool | None = None
    by_priority: dict[str, SlaCompliance] = Field(default_factory=dict)


class SlaReport(Wire):
    team: TeamRef
    days: int
    since: dt.datetime
    until: dt.datetime
    metrics: dict[str, SlaMetricReport] = Field(description="`frt` and `resolution`")
    violations: list[SlaViolationPublic]
    violations_total: int


class SlaReportList(Wire):
    reports: list[SlaReport]
    next_cursor: str | None = None


HoursPublic.model_rebuild()
