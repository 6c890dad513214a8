"""``max rate-limits``: customers held by the rate limit."""

from __future__ import annotations

from typing import Annotated

import typer

from max_cli.output import Cli, command

app = typer.Typer(help="Customer rate limits: who is held, and releasing them.", no_args_is_help=True)
COLUMNS = [
    ("customer_id", "CUSTOMER"),
    ("customer_name", "NAME"),
    ("kind", "KIND"),
    ("reason", "REASON"),
    ("until", "UNTIL"),
    ("held_count", "HELD"),
    ("lifted_at", "LIFTED"),
]


@command(app, "blocks")
def blocks(
    cli: Cli, all_: Annotated[bool, typer.Option("--all", help="Include past blocks.")] = False
) -> None:
    """List customers blocked by the rate limit now.

    Example: max rate-limits blocks --json
    """
    items = list(cli.client().paginate("/api/v1/rate-limits/blocks", "blocks", all=str(all_).lower()))
    cli.emit(
        {"blocks": items, "next_cursor": None}, lambda: cli.table(items, COLUMNS, empty="Nobody is held.")
    )


@command(app, "unblock")
def unblock(cli: Cli, customer: Annotated[str, typer.Argument(help="Customer id.")]) -> None:
    """Lift a customer's block and release their held conversations to routing.

    Example: max rate-limits unblock 17
    """
    result = cli.client().post(f"/api/v1/rate-limits/blocks/{customer}/unblock")
    cli.emit(result, lambda: cli.line(f"Lifted {result['lifted']} block(s) of customer {customer}."))
