"""``max db``: the server's database schema."""

from __future__ import annotations

from typing import Annotated

import typer

from max_cli import local
from max_cli.output import Cli, command

app = typer.Typer(
    help="The server's database: apply migrations, show the schema version.", no_args_is_help=True
)
ConfigOption = Annotated[
    str | None, typer.Option("--config", "-c", envvar="MAX_CONFIG", help="Server config file (TOML).")
]


@command(app, "upgrade", connects=False)
def upgrade(cli: Cli, config: ConfigOption = None) -> None:
    """Apply pending migrations to the configured database.

    Example: max db upgrade --config /etc/max/config.toml
    """
    result = local.upgrade(config)
    cli.emit(
        result,
        lambda: cli.line(
            f"{result['database']}: "
            + (
                f"upgraded {result['from'] or 'empty'} -> {result['to']}"
                if result["changed"]
                else f"already at {result['to']}"
            )
        ),
    )


@command(app, "status", connects=False)
def status(cli: Cli, config: ConfigOption = None) -> None:
    """Show the schema version of the configured database and the newest one.

    Example: max db status --json
    """
    result = local.status(config)
    cli.emit(result, lambda: cli.fields([(k, v) for k, v in result.items()]))
