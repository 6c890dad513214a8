"""``max routing``: triage rules and why a conversation went where it went."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import typer

from max_cli.output import Cli, CliError, command

app = typer.Typer(help="Routing: triage rules, and explanations of assignments.", no_args_is_help=True)
rules_app = typer.Typer(
    help="Triage rules, applied in order to a conversation's first message.", no_args_is_help=True
)
app.add_typer(rules_app, name="rules")
RULE_COLUMNS = [
    ("position", "#"),
    ("id", "ID"),
    ("name", "NAME"),
    ("match_type", "MATCH"),
    ("pattern", "PATTERN"),
    ("set_team", "TEAM"),
    ("set_priority", "PRIORITY"),
    ("required_skills", "SKILLS"),
]


def _skills(values: list[str]) -> list[dict[str, Any]]:
    """``billing=3`` → {"skill": "billing", "min": 3}; ``english`` → min 1."""
    parsed = []
    for value in values:
        skill, _, level = value.partition("=")
        if not skill or (level and not level.isdigit()):
            raise CliError(
                f"not a skill requirement: {value!r} (use skill or skill=MIN)",
                exit_code=2,
                code="validation_error",
            )
        parsed.append({"skill": skill.strip().lower(), "min": int(level or 1)})
    return parsed


def _skill_text(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        row["required_skills"] = [f"{r['skill']}≥{r['min']}" for r in row.get("required_skills") or []]


@command(rules_app, "add")
def add(
    cli: Cli,
    name: Annotated[str, typer.Argument(help="A name for people.")],
    keywords: Annotated[
        str | None, typer.Option(help="Comma-separated words or phrases (accents and case ignored).")
    ] = None,
    regex: Annotated[str | None, typer.Option(help="A regular expression instead of keywords.")] = None,
    team: Annotated[str | None, typer.Option(help="Team slug to route to.")] = None,
    priority: Annotated[
        Literal["low", "normal", "high", "urgent"] | None, typer.Option(help="Priority to set.")
    ] = None,
    skill: Annotated[
        list[str] | None, typer.Option("--skill", help="Required skill, e.g. billing=3 (repeat).")
    ] = None,
    channel: Annotated[str | None, typer.Option(help="Only for this channel account.")] = None,
    position: Annotated[
        int | None, typer.Option(help="Insert at this position (default: last).", min=1)
    ] = None,
) -> None:
    """Add a triage rule.

    Example: max routing rules add "Billing" --keywords "factura,pago,cobro" --team billing --skill spanish=3
    """
    if bool(keywords) == bool(regex):
        raise CliError("give exactly one of --keywords or --regex", exit_code=2, code="validation_error")
    body = {
        "name": name,
        "match_type": "regex" if regex else "keywords",
        "pattern": regex or keywords,
        "team": team,
        "priority": priority,
        "required_skills": _skills(skill or []),
        "channel": channel,
        "position": position,
    }
    rule = cli.client().post("/api/v1/routing/rules", body)
    cli.emit(
        rule, lambda: cli.line(f"Rule {rule['id']} '{rule['name']}' added at position {rule['position']}.")
    )


@command(rules_app, "list")
def list_rules(cli: Cli) -> None:
    """List triage rules in the order they are tried.

    Example: max routing rules list
    """
    items = list(cli.client().paginate("/api/v1/routing/rules", "rules"))

    def human() -> None:
        rows = [dict(r) for r in items]
        _skill_text(rows)
        cli.table(rows, RULE_COLUMNS, empty="No rules: conversations go to their channel's default team.")

    cli.emit({"rules": items, "next_cursor": None}, human)


@command(rules_app, "rm")
def remove(cli: Cli, rule_id: Annotated[str, typer.Argument(help="Rule id.")]) -> None:
    """Remove a rule.

    Example: max routing rules rm 3
    """
    cli.client().delete(f"/api/v1/routing/rules/{rule_id}")
    cli.emit({"removed": rule_id}, lambda: cli.line(f"Rule {rule_id} removed."))


@command(rules_app, "move")
def move(
    cli: Cli,
    rule_id: Annotated[str, typer.Argument(help="Rule id.")],
    position: Annotated[int, typer.Argument(help="New position (1 is tried first).", min=1)],
) -> None:
    """Move a rule to another position.

    Example: max routing rules move 3 1
    """
    result = cli.client().post(f"/api/v1/routing/rules/{rule_id}/move", {"position": position})
    cli.emit(result, lambda: cli.table(result["rules"], RULE_COLUMNS))


@command(rules_app, "test")
def try_text(
    cli: Cli,
    text: Annotated[str, typer.Argument(help="A first message to try.")],
    channel: Annotated[str | None, typer.Option(help="As if it came on this channel account.")] = None,
) -> None:
    """Show which rule a first message would match and what it would set.

    Example: max routing rules test "hola, no me llegó la factura"
    """
    result = cli.client().post("/api/v1/routing/rules/test", {"text": text, "channel": channel})

    def human() -> None:
        if not result["matched"]:
            cli.line("No rule matches: the channel's default team applies.")
            return
        rule = result["rule"]
        cli.line(
            f"Rule {rule['position']} '{rule['name']}' matches; it sets: "
            + ", ".join(f"{k}={v}" for k, v in result["sets"].items())
        )

    cli.emit(result, human)


@command(app, "explain")
def explain(cli: Cli, conversation: Annotated[str, typer.Argument(help="Conversation id.")]) -> None:
    """Why a conversation went where it went: every decision with candidates and scores.

    Example: max routing explain 42 --json
    """
    result = cli.client().get(f"/api/v1/conversations/{conversation}/routing")

    def human() -> None:
        for decision in result["decisions"]:
            cli.line(f"{decision['created_at'][:19]}  {decision['strategy']}: {decision['reason']}")
            if decision["candidates"]:
                cli.table(
                    decision["candidates"],
                    [
                        ("name", "AGENT"),
                        ("load", "LOAD"),
                        ("capacity", "CAP"),
                        ("qualifies", "SKILLS OK"),
                        ("skill_score", "SCORE"),
                        ("has_room", "ROOM"),
                    ],
                )

    cli.emit(result, human)
