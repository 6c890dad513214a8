"""``max users``: people who use MAX."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import typer

from max_cli import local
from max_cli.output import Cli, command

app = typer.Typer(help="Users: agents, supervisors and admins.", no_args_is_help=True)
USER_COLUMNS = [
    ("id", "ID"),
    ("name", "NAME"),
    ("email", "EMAIL"),
    ("role", "ROLE"),
    ("presence", "PRESENCE"),
    ("capacity", "CAPACITY"),
    ("is_active", "ACTIVE"),
]
UserArg = Annotated[str, typer.Argument(help="User id or email.")]


def show_user(cli: Cli, user: dict[str, Any]) -> None:
    cli.fields(
        [(title.lower(), user.get(key)) for key, title in USER_COLUMNS]
        + [("last seen", user.get("last_seen_at"))]
    )


@command(app, "create")
def create(
    cli: Cli,
    name: Annotated[str, typer.Argument(help="Full name.")],
    email: Annotated[str, typer.Option("--email", "-e", help="Email (unique).")],
    role: Annotated[
        Literal["agent", "supervisor", "admin"], typer.Option("--role", "-r", help="Global role.")
    ] = "agent",
    capacity: Annotated[int, typer.Option(help="Conversations at once.", min=0)] = 5,
    config: Annotated[
        str | None,
        typer.Option("--config", "-c", envvar="MAX_CONFIG", help="Server config, for the first user only."),
    ] = None,
) -> None:
    """Create a user and print their first API token (shown once).

    With no token anywhere and an empty database, this creates the first user directly in the
    configured database (bootstrap); otherwise it goes through the API with an admin token.

    Example: max users create "Ana Ruiz" --email ana@example.com --role admin --json
    """
    if cli.has_token():
        result = cli.client().post(
            "/api/v1/users", {"name": name, "email": email, "role": role, "capacity": capacity}
        )
    else:
        result = local.bootstrap_user(config, name, email, role, capacity)

    def human() -> None:
        show_user(cli, result["user"])
        cli.line(f"token     {result['token']}")
        cli.info("Keep the token now: it is not shown again.")

    cli.emit(result, human)


@command(app, "list")
def list_users(
    cli: Cli, inactive: Annotated[bool, typer.Option(help="Include deactivated users.")] = False
) -> None:
    """List users.

    Example: max users list --json
    """
    items = list(cli.client().paginate("/api/v1/users", "users", active=None if inactive else True))
    cli.emit({"users": items, "next_cursor": None}, lambda: cli.table(items, USER_COLUMNS))


@command(app, "show")
def show(cli: Cli, user: UserArg) -> None:
    """Show one user.

    Example: max users show ana@example.com
    """
    found = cli.client().get(f"/api/v1/users/{user}")
    cli.emit(found, lambda: show_user(cli, found))


@command(app, "deactivate")
def deactivate(cli: Cli, user: UserArg) -> None:
    """Deactivate a user: their tokens stop working at once.

    Example: max users deactivate ana@example.com
    """
    found = cli.client().patch(f"/api/v1/users/{user}", {"is_active": False})
    cli.emit(found, lambda: cli.line(f"Deactivated {found['name']} <{found['email']}>."))


@command(app, "activate")
def activate(cli: Cli, user: UserArg) -> None:
    """Reactivate a deactivated user.

    Example: max users activate ana@example.com
    """
    found = cli.client().patch(f"/api/v1/users/{user}", {"is_active": True})
    cli.emit(found, lambda: cli.line(f"Activated {found['name']} <{found['email']}>."))


@command(app, "set-role")
def set_role(
    cli: Cli,
    user: UserArg,
    role: Annotated[Literal["agent", "supervisor", "admin"], typer.Argument(help="New global role.")],
) -> None:
    """Change a user's global role.

    Example: max users set-role ana@example.com supervisor
    """
    found = cli.client().patch(f"/api/v1/users/{user}", {"role": role})
    cli.emit(found, lambda: cli.line(f"{found['name']} is now {found['role']}."))


@command(app, "set-capacity")
def set_capacity(
    cli: Cli,
    user: UserArg,
    capacity: Annotated[int, typer.Argument(help="Conversations at once.", min=0, max=1000)],
) -> None:
    """Set how many conversations routing may give an agent at once.

    Example: max users set-capacity ana@example.com 8
    """
    found = cli.client().patch(f"/api/v1/users/{user}", {"capacity": capacity})
    cli.emit(found, lambda: cli.line(f"{found['name']} now takes up to {found['capacity']} conversations."))
