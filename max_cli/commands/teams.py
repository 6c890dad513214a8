"""``max teams``: teams and their members."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import typer

from max_cli.output import Cli, command

app = typer.Typer(help="Teams and their members.", no_args_is_help=True)
TeamArg = Annotated[str, typer.Argument(help="Team slug or id.")]
UserArg = Annotated[str, typer.Argument(help="User email or id.")]


def show_team(cli: Cli, team: dict[str, Any]) -> None:
    cli.fields(
        [
            ("id", team["id"]),
            ("slug", team["slug"]),
            ("name", team["name"]),
            ("timezone", team["timezone"]),
            ("auto assign", team["auto_assign"]),
            ("members", team.get("member_count")),
        ]
    )
    if team.get("members"):
        cli.line("")
        cli.table(
            team["members"], [("user_id", "USER"), ("name", "NAME"), ("email", "EMAIL"), ("role", "ROLE")]
        )


@command(app, "create")
def create(
    cli: Cli,
    slug: Annotated[str, typer.Argument(help="Short name: lowercase letters, digits, - and _.")],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    timezone: Annotated[str, typer.Option(help="IANA time zone for business hours and SLAs.")] = "UTC",
) -> None:
    """Create a team.

    Example: max teams create support --name "Customer Support" --timezone America/Mexico_City
    """
    team = cli.client().post("/api/v1/teams", {"slug": slug, "name": name, "timezone": timezone})
    cli.emit(team, lambda: show_team(cli, team))


@command(app, "list")
def list_teams(cli: Cli) -> None:
    """List teams.

    Example: max teams list --json
    """
    teams = list(cli.client().paginate("/api/v1/teams", "teams"))
    cli.emit(
        {"teams": teams, "next_cursor": None},
        lambda: cli.table(
            teams,
            [
                ("id", "ID"),
                ("slug", "SLUG"),
                ("name", "NAME"),
                ("timezone", "TIMEZONE"),
                ("member_count", "MEMBERS"),
            ],
        ),
    )


@command(app, "show")
def show(cli: Cli, team: TeamArg) -> None:
    """Show a team and its members.

    Example: max teams show support
    """
    found = cli.client().get(f"/api/v1/teams/{team}")
    cli.emit(found, lambda: show_team(cli, found))


@command(app, "add-member")
def add_member(
    cli: Cli,
    team: TeamArg,
    user: UserArg,
    role: Annotated[Literal["member", "supervisor"], typer.Option(help="Role in this team.")] = "member",
) -> None:
    """Add a user to a team (or change their role in it).

    Example: max teams add-member support ana@example.com --role supervisor
    """
    found = cli.client().put(f"/api/v1/teams/{team}/members/{user}", {"role": role})
    cli.emit(found, lambda: show_team(cli, found))


@command(app, "remove-member")
def remove_member(cli: Cli, team: TeamArg, user: UserArg) -> None:
    """Remove a user from a team.

    Example: max teams remove-member support ana@example.com
    """
    found = cli.client().delete(f"/api/v1/teams/{team}/members/{user}")
    cli.emit(found, lambda: show_team(cli, found))
