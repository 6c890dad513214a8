"""``max tokens``: API tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from max_cli.output import Cli, command

app = typer.Typer(help="API tokens (stored only as hashes; shown once when created).", no_args_is_help=True)


@command(app, "create")
def create(
    cli: Cli,
    user: Annotated[str, typer.Argument(help="User id or email.")],
    name: Annotated[str, typer.Option(help="What the token is for.")] = "default",
) -> None:
    """Create another token for a user and print it once.

    Example: max tokens create ana@example.com --name laptop
    """
    result = cli.client().post(f"/api/v1/users/{user}/tokens", {"name": name})

    def human() -> None:
        cli.line(result["token"])
        cli.info("Keep the token now: it is not shown again.")

    cli.emit(result, human)


@command(app, "list")
def list_tokens(cli: Cli, user: Annotated[str, typer.Argument(help="User id or email.")]) -> None:
    """List a user's tokens (never the secrets).

    Example: max tokens list ana@example.com
    """
    result = cli.client().get(f"/api/v1/users/{user}/tokens")
    cli.emit(
        result,
        lambda: cli.table(
            result["tokens"],
            [
                ("id", "ID"),
                ("name", "NAME"),
                ("created_at", "CREATED"),
                ("last_used_at", "LAST USED"),
                ("revoked_at", "REVOKED"),
            ],
        ),
    )


@command(app, "revoke")
def revoke(
    cli: Cli, token_id: Annotated[str, typer.Argument(help="Token id (see `max tokens list`).")]
) -> None:
    """Revoke a token at once.

    Example: max tokens revoke 12
    """
    result = cli.client().delete(f"/api/v1/tokens/{token_id}")
    cli.emit(result, lambda: cli.line(f"Revoked token {result['id']} ({result['name']})."))
