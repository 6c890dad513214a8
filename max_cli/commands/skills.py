"""``max skills``: what agents are good at (skills-based routing)."""

from __future__ import annotations

from typing import Annotated

import typer

from max_cli.output import Cli, CliError, command

app = typer.Typer(help="Agents' skills and proficiency (1-5).", no_args_is_help=True)
COLUMNS = [("user_id", "USER"), ("skill", "SKILL"), ("proficiency", "LEVEL")]


@command(app, "set")
def set_skills(
    cli: Cli,
    user: Annotated[str, typer.Argument(help="User email or id.")],
    skills: Annotated[list[str], typer.Argument(help="skill=level pairs, e.g. english=5 billing=4")],
) -> None:
    """Add or update an agent's skills (others stay).

    Example: max skills set ana@example.com english=5 billing=4
    """
    parsed: dict[str, int] = {}
    for pair in skills:
        name, _, level = pair.partition("=")
        if not name or not level.isdigit():
            raise CliError(f"not skill=level: {pair!r}", exit_code=2, code="validation_error")
        parsed[name] = int(level)
    result = cli.client().put(f"/api/v1/users/{user}/skills", {"skills": parsed})
    cli.emit(result, lambda: cli.table(result["skills"], COLUMNS))


@command(app, "list")
def list_skills(
    cli: Cli, user: Annotated[str | None, typer.Argument(help="Only this user (email or id).")] = None
) -> None:
    """List skills (everyone's, or one agent's).

    Example: max skills list ana@example.com --json
    """
    items = list(cli.client().paginate("/api/v1/skills", "skills", user=user))
    cli.emit(
        {"skills": items, "next_cursor": None},
        lambda: cli.table(items, COLUMNS, empty="No skills recorded."),
    )


@command(app, "rm")
def remove(
    cli: Cli,
    user: Annotated[str, typer.Argument(help="User email or id.")],
    skill: Annotated[str, typer.Argument(help="Skill name.")],
) -> None:
    """Remove one skill from an agent.

    Example: max skills rm ana@example.com billing
    """
    cli.client().delete(f"/api/v1/users/{user}/skills/{skill}")
    cli.emit({"removed": skill, "user": user}, lambda: cli.line(f"Removed {skill} from {user}."))
