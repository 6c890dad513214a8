"""SLA in the console (pure functions, "now" passed in): the countdown to a conversation's next
deadline, its level (amber from 80 % of the target, red once breached), and the SLA screen's
daily compliance and sparklines.

How 80 % is judged: the deadline is known (``frt_due_at``, ``resolution_due_at``); the start of
the clock is ``due - target`` when the team's policy for that priority counts wall-clock time
(exact, also for reopened conversations), otherwise (business-hours policies, or no policy
known) the first message for a first cycle. When neither gives a start, the server's own
``sla.warning`` event turns the countdown amber (the console remembers which it received).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from max_server.schemas import ConversationPublic, SlaPolicyPublic, SlaReport
from max_tui.formatting import compact_duration

WARNING_FRACTION = 0.8
METRIC_SHORT = {"frt": "FRT", "resolution": "RES"}
METRIC_LONG = {"frt": "First reply", "resolution": "Resolution"}
SPARK_BARS = "▁▂▃▄▅▆▇█"
NO_DATA = "·"


class Level(StrEnum):
    OK = "ok"
    WARNING = "warning"
    BREACHED = "breached"


LEVEL_STYLES = {
    Level.OK: "$text-muted",
    Level.WARNING: "$text-warning bold",
    Level.BREACHED: "$text-error bold",
}


@dataclass(frozen=True)
class Target:
    frt_s: int
    resolution_s: int
    business_hours_only: bool


Policies = Mapping[tuple[str, str], Target]


def policy_map(policies: Iterable[SlaPolicyPublic]) -> dict[tuple[str, str], Target]:
    """(team id, priority) → the policy's targets."""
    return {
        (p.team.id, p.priority): Target(p.frt_target_s, p.resolution_target_s, p.business_hours_only)
        for p in policies
    }


@dataclass(frozen=True)
class Countdown:
    metric: str  # frt | resolution
    due: datetime
    level: Level
    remaining: timedelta  # negative once breached

    @property
    def short(self) -> str:
        """For queue rows: ``FRT 12m``, ``RES late 3m``."""
        if self.level is Level.BREACHED:
            return f"{METRIC_SHORT[self.metric]} late {compact_duration(-self.remaining)}"
        return f"{METRIC_SHORT[self.metric]} {compact_duration(self.remaining)}"

    @property
    def long(self) -> str:
        """For the thread header: ``First reply due in 12m``, ``Resolution 3m late``."""
        if self.level is Level.BREACHED:
            return f"{METRIC_LONG[self.metric]} {compact_duration(-self.remaining)} late"
        return f"{METRIC_LONG[self.metric]} due in {compact_duration(self.remaining)}"

    @property
    def style(self) -> str:
        return LEVEL_STYLES[self.level]


def next_deadline(conversation: ConversationPublic) -> tuple[str, datetime] | None:
    """The deadline that matters now: the first reply while none was given, then resolution."""
    if conversation.status == "closed":
        return None
    if conversation.first_response_at is None and conversation.frt_due_at is not None:
        return "frt", conversation.frt_due_at
    if conversation.resolution_due_at is not None:
        return "resolution", conversation.resolution_due_at
    return None


def clock_start(
    conversation: ConversationPublic, metric: str, due: datetime, policies: Policies
) -> datetime | None:
    target = policies.get((conversation.team.id, conversation.priority)) if conversation.team else None
    if target is not None and not target.business_hours_only and conversation.escalated_at is None:
        return due - timedelta(seconds=target.frt_s if metric == "frt" else target.resolution_s)
    if conversation.cycle == 1 and conversation.first_message_at is not None:
        return conversation.first_message_at
    return None


def countdown(
    conversation: ConversationPublic,
    now: datetime,
    policies: Policies,
    warned: frozenset[tuple[str, str]] | set[tuple[str, str]] = frozenset(),
) -> Countdown | None:
    """The countdown to the next deadline, or None when nothing is due. ``warned``: (conversation
    id, metric) pairs the server announced with ``sla.warning``."""
    found = next_deadline(conversation)
    if found is None:
        return None
    metric, due = found
    remaining = due - now
    if remaining <= timedelta(0):
        return Countdown(metric, due, Level.BREACHED, remaining)
    level = Level.OK
    start = clock_start(conversation, metric, due, policies)
    if start is not None and due > start and (now - start) / (due - start) >= WARNING_FRACTION:
        level = Level.WARNING
    if (conversation.id, metric) in warned:
        level = Level.WARNING
    return Countdown(metric, due, level, remaining)


def escalated(conversation: ConversationPublic) -> bool:
    return conversation.escalated_at is not None and conversation.status != "closed"


# The supervisors' screen --------------------------------------------------------------------
def sparkline(values: Sequence[float | None]) -> str:
    """One cell per value on a fixed 0–100 scale (compliance %), ``·`` where there was nothing to
    count. A fixed scale on purpose: 95 % and 100 % must not look like empty and full."""
    cells = []
    for value in values:
        if value is None:
            cells.append(NO_DATA)
        else:
            bounded = min(max(value, 0.0), 100.0)
            cells.append(SPARK_BARS[min(int(bounded / 100 * len(SPARK_BARS)), len(SPARK_BARS) - 1)])
    return "".join(cells)


def _compliance(met: int, breached: int) -> float | None:
    total = met + breached
    return round(100.0 * met / total, 2) if total else None


def daily_compliance(
    cumulative: Sequence[Sequence[SlaReport]], team_id: str, metric: str
) -> list[float | None]:
    """Compliance per day, oldest first, from reports over the last 1, 2, … N days (the report
    counts outcomes whose deadline fell in ``now - days … now``, so day k is the difference of
    the k-day and (k-1)-day counts)."""
    counts: list[tuple[int, int]] = []
    for reports in cumulative:
        found = next((r for r in reports if r.team.id == team_id), None)
        figures = found.metrics.get(metric) if found else None
        counts.append((figures.met, figures.breached) if figures else (0, 0))
    days: list[float | None] = []
    previous = (0, 0)
    for met, breached in counts:
        days.append(_compliance(max(met - previous[0], 0), max(breached - previous[1], 0)))
        previous = (met, breached)
    return list(reversed(days))
