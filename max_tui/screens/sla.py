"""The supervisors' SLA screen (F10; the seed's dashboard): compliance per team and metric against
its target, with a sparkline of the last days, the breakdown per priority, then the period's
violations and escalations.

The daily figures come from the report endpoint itself (``GET /api/v1/sla/report?days=k`` for k
= 1…N, fetched concurrently): day k is the difference between the k-day and (k-1)-day counts.
``r`` reloads; Escape goes back to the queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, Static

from max_server.client import ApiError
from max_server.schemas import SlaReport, SlaViolationPublic
from max_tui.api import ConsoleApi
from max_tui.formatting import clock_time, duration_text
from max_tui.sla import METRIC_LONG, daily_compliance, sparkline

DAYS = 7


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:g}%"


def team_content(report: SlaReport, history: list[list[SlaReport]]) -> Content:
    lines = [Content.styled(report.team.name, "bold $text-primary")]
    for metric in ("frt", "resolution"):
        figures = report.metrics.get(metric)
        if figures is None:
            continue
        days = daily_compliance(history, report.team.id, metric)
        verdict: tuple[str, str] = ("  ", "")
        if figures.meets_target is True:
            verdict = (" ✓", "$text-success bold")
        elif figures.meets_target is False:
            verdict = (" ✗", "$text-error bold")  # below target
        lines.append(
            Content.assemble(
                (f"  {METRIC_LONG[metric]:<12}", ""),
                (f"{percent(figures.compliance_pct):>7}", "bold"),
                (f"  target {percent(figures.target_pct):>4}", "$text-muted"),
                verdict,
                (f"  {sparkline(days)}  ", "$text-accent"),
                (f"{figures.met} met, {figures.breached} breached", "$text-muted"),
            )
        )
        for priority, part in figures.by_priority.items():
            lines.append(
                Content.styled(
                    f"      {priority:<8}{percent(part.compliance_pct):>7}"
                    f"  ({part.met} met, {part.breached} breached)",
                    "$text-muted",
                )
            )
    return Content("\n").join(lines)


def violation_row(violation: SlaViolationPublic, now: datetime, tz: tzinfo) -> tuple[str, ...]:
    return (
        clock_time(violation.detected_at, now, tz),
        f"#{violation.conversation_number}" if violation.conversation_number else violation.conversation_id,
        violation.team.name if violation.team else "—",
        violation.priority,
        "FRT" if violation.kind == "frt" else "Resolution",
        f"{duration_text(violation.actual_s)} / {duration_text(violation.target_s)}",
        "▲ yes" if violation.escalated else "",
    )


class SlaScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="sla.back"),
        Binding("r", "reload", "Reload", id="sla.reload"),
    ]
    AUTO_FOCUS = "#sla-violations"

    def __init__(self, api: ConsoleApi, now: Callable[[], datetime], tz: tzinfo, days: int = DAYS) -> None:
        super().__init__()
        self.api, self.now, self.tz, self.days = api, now, tz, days
        self.reports: list[SlaReport] = []
        self.loads = 0

    def compose(self) -> ComposeResult:
        with Vertical(id="sla"):
            yield Label(f"SLA · last {self.days} days", id="sla-title", markup=False)
            yield VerticalScroll(Static("Loading…", id="sla-teams", markup=False), id="sla-teams-box")
            yield Label("Violations", id="sla-violations-title", classes="section-title", markup=False)
            yield DataTable(id="sla-violations", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#sla-violations", DataTable)
        table.add_columns("When", "Conv", "Team", "Priority", "Metric", "Actual / target", "Escalated")
        self.action_reload()

    @work(exclusive=True, group="sla-report", exit_on_error=False)
    async def action_reload(self) -> None:
        teams = self.query_one("#sla-teams", Static)
        try:
            history = list(await asyncio.gather(*(self.api.sla_reports(k) for k in range(1, self.days + 1))))
        except ApiError as exc:
            teams.update(Content.styled(f"Cannot load the SLA report: {exc.message}", "$text-error"))
            return
        now = self.now()
        self.reports = history[-1]
        title = (
            f"SLA · last {self.days} days · as of {clock_time(now, now, self.tz)}"
            " · ✓/✗ against target · a cell a day, oldest first"
        )
        self.query_one("#sla-title", Label).update(title)
        blocks = [team_content(report, history) for report in self.reports]
        teams.update(
            Content("\n\n").join(blocks) if blocks else Content.styled("No teams yet.", "$text-muted")
        )
        violations = sorted(
            (v for report in self.reports for v in report.violations),
            key=lambda v: v.detected_at,
            reverse=True,
        )
        escalations = sum(1 for v in violations if v.escalated)
        total = sum(report.violations_total for report in self.reports)
        self.query_one("#sla-violations-title", Label).update(
            f"Violations · {total} in {self.days} days · {escalations} escalated"
        )
        table = self.query_one("#sla-violations", DataTable)
        table.clear()
        for violation in violations:
            table.add_row(*violation_row(violation, now, self.tz), key=violation.id)
        self.loads += 1

    def action_back(self) -> None:
        self.dismiss(None)
