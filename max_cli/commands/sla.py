"""``max sla``: SLA policies per team and priority, compliance targets, reports, violations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import typer

from max_cli.output import EXIT_USAGE, Cli, CliError, command
from max_server.domain.durations import format_duration, parse_duration

app = typer.Typer(help="SLA policies, compliance targets, reports and violations.", no_args_is_help=True)
Priority = Literal["low", "normal", "high", "urgent"]
TeamOption = Annotated[str, typer.Option("--team", help="Team slug or id.")]
NAMES = {"frt": "FRT", "resolution": "Resolution"}


def _seconds(text: str, option: str) -> int:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise CliError(f"{option}: {exc}", exit_code=EXIT_USAGE, code="invalid_duration") from None
    if value <= 0:
        raise CliError(f"{option} must be more than zero", exit_code=EXIT_USAGE, code="invalid_duration")
    return value


def _policy_rows(policies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **p,
            "frt": format_duration(p["frt_target_s"]),
            "resolution": format_duration(p["resolution_target_s"]),
            "escalate": format_duration(p["escalation_after_s"]) if p.get("escalation_after_s") else None,
            "calendar": "business hours" if p["business_hours_only"] else "24/7",
        }
        for p in policies
    ]


POLICY_COLUMNS = [
    ("team", "TEAM"),
    ("priority", "PRIORITY"),
    ("frt", "FIRST RESPONSE"),
    ("resolution", "RESOLUTION"),
    ("escalate", "ESCALATE AFTER"),
    ("calendar", "CLOCK"),
]


@command(app, "set")
def set_policy(
    cli: Cli,
    team: TeamOption,
    priority: Annotated[Priority, typer.Option(help="Conversations of this priority.")],
    frt: Annotated[str, typer.Option(help="First-response target, e.g. 3m.")],
    resolution: Annotated[str, typer.Option(help="Resolution target, e.g. 15m or 4h.")],
    escalate_after: Annotated[
        str | None, typer.Option(help="Escalate a conversation still in breach this long after it started.")
    ] = None,
    business_hours: Annotated[
        bool, typer.Option("--business-hours", help="Count only the team's business hours.")
    ] = False,
) -> None:
    """Create or replace the SLA policy of a team and priority.

    Example: max sla set --team sales --priority urgent --frt 3m --resolution 15m --escalate-after 10m
    """
    body = {
        "team": team,
        "priority": priority,
        "frt_target_s": _seconds(frt, "--frt"),
        "resolution_target_s": _seconds(resolution, "--resolution"),
        "escalation_after_s": _seconds(escalate_after, "--escalate-after") if escalate_after else None,
        "business_hours_only": business_hours,
    }
    result = cli.client().put("/api/v1/sla/policies", body)
    cli.emit(result, lambda: cli.table(_policy_rows([result]), POLICY_COLUMNS))


@command(app, "list")
def list_policies(
    cli: Cli, team: Annotated[str | None, typer.Option("--team", help="One team (default all).")] = None
) -> None:
    """List SLA policies (JSON: frt_target_s, resolution_target_s, escalation_after_s).

    Example: max sla list --json
    """
    result = cli.client().get("/api/v1/sla/policies", team=team)
    cli.emit(
        result, lambda: cli.table(_policy_rows(result["policies"]), POLICY_COLUMNS, empty="No SLA policies.")
    )


@command(app, "rm")
def remove_policy(
    cli: Cli, team: TeamOption, priority: Annotated[Priority, typer.Option(help="Which policy.")]
) -> None:
    """Remove the SLA policy of a team and priority.

    Example: max sla rm --team sales --priority low
    """
    cli.client().delete(f"/api/v1/sla/policies/{team}/{priority}")
    result = {"deleted": {"team": team, "priority": priority}}
    cli.emit(result, lambda: cli.info(f"Removed the {priority} policy of {team}."))


@command(app, "targets")
def targets(
    cli: Cli,
    team: TeamOption,
    frt: Annotated[
        float | None, typer.Option(help="First-response compliance %, e.g. 95.", min=0, max=100)
    ] = None,
    resolution: Annotated[
        float | None, typer.Option(help="Resolution compliance %, e.g. 90.", min=0, max=100)
    ] = None,
) -> None:
    """Set (or, with no figures, show) a team's compliance targets.

    Example: max sla targets --team sales --frt 95 --resolution 90
    """
    client = cli.client()
    if frt is None and resolution is None:
        result = client.get("/api/v1/sla/targets", team=team)["targets"][0]
    else:
        result = client.put("/api/v1/sla/targets", {"team": team, "frt": frt, "resolution": resolution})

    def human() -> None:
        for metric in ("frt", "resolution"):
            value = result.get(metric)
            cli.line(f"{NAMES[metric]}: {'-' if value is None else f'{value:g}%'}")

    cli.emit(result, human)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:g}%"


def show_report(cli: Cli, report: dict[str, Any]) -> None:
    cli.line(f"Team: {report['team']['name']}")
    cli.line(f"SLA Compliance (Last {report['days']} days):")
    for metric in ("frt", "resolution"):
        figures = report["metrics"][metric]
        target = f" (target: {_pct(figures['target_pct'])})" if figures.get("target_pct") is not None else ""
        counts = f"  [{figures['met']} met, {figures['breached']} breached]"
        cli.line(f"  {NAMES[metric]}: {_pct(figures['compliance_pct'])}{target}{counts}")
        for priority, part in figures["by_priority"].items():
            counts = f"({part['met']} met, {part['breached']} breached)"
            cli.line(f"      {priority}: {_pct(part['compliance_pct'])} {counts}")
    cli.line("")
    cli.line("Violations:" if report["violations"] else "Violations: none")
    for item in report["violations"]:
        escalated = " - ESCALATED" if item["escalated"] else ""
        actual, target = format_duration(item["actual_s"]), format_duration(item["target_s"])
        number = item.get("conversation_number") or item["conversation_id"]
        cli.line(f"  - Conv #{number}: {NAMES[item['kind']]} {actual} (target: {target}){escalated}")
    if report["violations_total"] > len(report["violations"]):
        cli.line(
            f"  … and {report['violations_total'] - len(report['violations'])} more (max sla violations)"
        )


@command(app, "report")
def report(
    cli: Cli,
    team: Annotated[str | None, typer.Option("--team", help="One team (default every team).")] = None,
    days: Annotated[int, typer.Option(help="The last this many days.", min=1, max=366)] = 7,
) -> None:
    """SLA compliance per metric and priority against the team's targets, and the violations.

    Example: max sla report --team sales --days 7
    """
    result = cli.client().get("/api/v1/sla/report", team=team, days=days)

    def human() -> None:
        for index, one in enumerate(result.get("reports", [result])):
            if index:
                cli.line("")
            show_report(cli, one)

    cli.emit(result, human)


def _since(text: str) -> str:
    """``7d``/``12h`` ago, or an ISO date or datetime (UTC when it has no offset)."""
    try:
        return (datetime.now(UTC) - timedelta(seconds=parse_duration(text))).isoformat()
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(
            f"--since {text!r}: give a duration (7d) or an ISO date",
            exit_code=EXIT_USAGE,
            code="invalid_since",
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


@command(app, "violations")
def violations(
    cli: Cli,
    team: Annotated[str | None, typer.Option("--team", help="One team.")] = None,
    since: Annotated[str | None, typer.Option(help="Detected since: 7d, 12h, or an ISO date.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=1, max=10000)] = 100,
) -> None:
    """List SLA violations, newest first.

    Example: max sla violations --team sales --since 7d
    """
    items: list[dict[str, Any]] = []
    params = {"team": team, "since": _since(since) if since else None}
    for item in cli.client().paginate(
        "/api/v1/sla/violations", "violations", limit=min(limit, 500), **params
    ):
        items.append(item)
        if len(items) >= limit:
            break
    rows = [
        {
            **v,
            "number": f"#{v.get('conversation_number') or v['conversation_id']}",
            "metric": NAMES[v["kind"]],
            "actual": format_duration(v["actual_s"]),
            "target": format_duration(v["target_s"]),
            "escalated_mark": "ESCALATED" if v["escalated"] else "",
        }
        for v in items
    ]
    columns = [
        ("detected_at", "DETECTED"),
        ("number", "CONV"),
        ("team", "TEAM"),
        ("priority", "PRIORITY"),
        ("metric", "METRIC"),
        ("actual", "ACTUAL"),
        ("target", "TARGET"),
        ("escalated_mark", ""),
    ]
    cli.emit(
        {"violations": items, "next_cursor": None}, lambda: cli.table(rows, columns, empty="No violations.")
    )
