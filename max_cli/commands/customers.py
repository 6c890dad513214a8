"""``max customers``: search, the context, links and their undo, tags, imports, erasure."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from max_cli.output import EXIT_USAGE, Cli, CliError, command
from max_server.client import ApiError, MaxClient

app = typer.Typer(
    help="Customers: search, context, link identities (and undo), tags, imports, erasure.",
    no_args_is_help=True,
)
CustomerArg = Annotated[str, typer.Argument(help="Customer id.")]
BASE = "/api/v1/customers"
COLUMNS = [
    ("id", "ID"),
    ("name", "NAME"),
    ("email", "EMAIL"),
    ("phone_e164", "PHONE"),
    ("identities", "IDENTITIES"),
    ("tags", "TAGS"),
]
LINK_COLUMNS = [
    ("link_id", "LINK"),
    ("primary_customer_id", "PRIMARY"),
    ("secondary_customer_id", "SECONDARY"),
    ("linked_by", "LINKED BY"),
    ("created_at", "LINKED AT"),
    ("unlinked_at", "UNDONE AT"),
]


def _identity_list(customer: dict[str, Any]) -> str:
    return ", ".join(f"{i['channel']}:{i['external_id']}" for i in customer.get("identities", [])) or "-"


def _row(customer: dict[str, Any]) -> dict[str, Any]:
    return {**customer, "identities": _identity_list(customer)}


def money(transaction: dict[str, Any]) -> str:
    amount, minor = transaction["amount"], transaction["amount_minor"]
    places = round(math.log10(minor / amount)) if amount and minor else 2
    return f"{amount:,.{max(places, 0)}f} {transaction['currency']}"


@command(app, "search")
def search(
    cli: Cli,
    query: Annotated[str | None, typer.Argument(help="Name, email, phone (any form) or channel id.")] = None,
    inactive: Annotated[bool, typer.Option("--inactive", help="Also linked-away and erased ones.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=1, max=10000)] = 50,
) -> None:
    """Search the customers you may see (all of them without a query).

    Example: max customers search "+52 55 1234 5678" --json
    """
    found: list[dict[str, Any]] = []
    for item in cli.client().paginate(
        BASE, "customers", limit=min(limit, 500), q=query, include_inactive=inactive
    ):
        found.append(item)
        if len(found) >= limit:
            break
    cli.emit(
        {"customers": found, "next_cursor": None},
        lambda: cli.table([_row(c) for c in found], COLUMNS, empty="No customers."),
    )


@command(app, "show")
def show(cli: Cli, customer: CustomerArg) -> None:
    """Show a customer with identities and tags.

    Example: max customers show 42
    """
    found = cli.client().get(f"{BASE}/{customer}")

    def human() -> None:
        cli.fields(
            [
                ("id", found["id"]),
                ("name", found.get("name")),
                ("email", found.get("email")),
                ("phone", found.get("phone_e164")),
                ("identities", _identity_list(found)),
                ("tags", found.get("tags")),
                ("active", found["is_active"]),
                ("linked into", found.get("merged_into_id")),
                ("erased at", found.get("erased_at")),
            ]
        )

    cli.emit(found, human)


@command(app, "context")
def context(
    cli: Cli,
    customer: CustomerArg,
    limit: Annotated[int, typer.Option(help="Items per list.", min=1, max=100)] = 20,
) -> None:
    """Show the customer's context: identities, previous conversations, transactions, tickets, tags.

    Example: max customers context 42 --json
    """
    doc = cli.client().get(f"{BASE}/{customer}/context", limit=limit)

    def human() -> None:
        person = doc["customer"]
        cli.line(f"Customer: {person.get('name') or '(no name)'}  [{person['id']}]")
        for identity in person["identities"]:
            cli.line(f"  {identity['external_id']} ({identity['channel']})")
        cli.line(f"Previous conversations ({doc['previous_conversations_total']})")
        for c in doc["previous_conversations"]:
            reason = f" ({c['close_reason']})" if c.get("close_reason") else ""
            subject = c.get("subject") or "-"
            cli.line(f"  • #{c['number']} [{c['status']}{reason}] {subject}  {c['created_at'][:10]}")
        cli.line(f"Recent transactions ({len(doc['recent_transactions'])})")
        for t in doc["recent_transactions"]:
            cli.line(f"  • {t['transaction_id']}: {money(t)} - {t['status']} ({t['occurred_at'][:10]})")
        cli.line(f"Open tickets ({len(doc['open_tickets'])})")
        for t in doc["open_tickets"]:
            cli.line(f"  • {t['ticket_id']}: {t['subject']} [{t['status']}]")
        cli.line("Tags")
        for tag in doc["tags"]:
            cli.line(f"  • {tag}")

    cli.emit(doc, human)


@command(app, "link")
def link(
    cli: Cli,
    primary: Annotated[str, typer.Argument(help="The customer that stays.")],
    secondary: Annotated[str, typer.Argument(help="The customer folded into it.")],
) -> None:
    """Link two customers (the same person): SECONDARY's identities, conversations, tags,
    transactions and tickets move to PRIMARY; undo with `max customers unlink LINK_ID`.

    Example: max customers link 12 34 --json
    """
    result = cli.client().post(f"{BASE}/{primary}/link", {"secondary_customer_id": secondary})
    moved = result["moved"]
    cli.emit(
        result,
        lambda: cli.line(
            f"Linked customer {secondary} into {primary} (link {result['link_id']}): moved "
            f"{moved['identities']} identities, {moved['conversations']} conversations, "
            f"{moved['transactions']} transactions, {moved['tickets']} tickets."
        ),
    )


@command(app, "links")
def links(
    cli: Cli, customer: Annotated[str | None, typer.Argument(help="Only this customer's.")] = None
) -> None:
    """List links (merges), newest first, undone ones included.

    Example: max customers links 12
    """
    path = f"{BASE}/{customer}/links" if customer else f"{BASE}/links"
    found = list(cli.client().paginate(path, "links", limit=500))
    cli.emit({"links": found, "next_cursor": None}, lambda: cli.table(found, LINK_COLUMNS, empty="No links."))


@command(app, "unlink")
def unlink(cli: Cli, link_id: Annotated[str, typer.Argument(help="The link id (see `links`).")]) -> None:
    """Undo a link: both customers are restored exactly as they were.

    Example: max customers unlink 7
    """
    result = cli.client().post(f"{BASE}/links/{link_id}/undo")
    left = result.get("not_reopened") or []
    note = f" Left closed (another is open): {', '.join(left)}." if left else ""
    cli.emit(
        result,
        lambda: cli.line(
            f"Undid link {link_id}: customers {result['primary_customer_id']} and "
            f"{result['secondary_customer_id']} are separate again.{note}"
        ),
    )


@command(app, "suggest")
def suggest(cli: Cli, customer: CustomerArg) -> None:
    """Customers that may be the same person (same phone in any form, or same email).

    Example: max customers suggest 12 --json
    """
    found = cli.client().get(f"{BASE}/{customer}/link-suggestions")["suggestions"]
    rows = [
        {**_row(s["customer"]), "reasons": ", ".join(f"{r['kind']} {r['value']}" for r in s["reasons"])}
        for s in found
    ]
    cli.emit(
        {"suggestions": found, "next_cursor": None},
        lambda: cli.table(rows, [*COLUMNS[:3], ("reasons", "WHY")], empty="No suggestions."),
    )


def _tags(cli: Cli, customer: str, tags: list[str], remove: bool) -> None:
    client = cli.client()
    path = f"{BASE}/{customer}/tags"
    result = client.delete(path, tag=tags) if remove else client.post(path, {"tags": tags})
    cli.emit(result, lambda: cli.line(f"Tags of {customer}: {', '.join(result['tags']) or '(none)'}"))


@command(app, "tag")
def tag(
    cli: Cli, customer: CustomerArg, tags: Annotated[list[str], typer.Argument(help="Tags to add.")]
) -> None:
    """Add tags to a customer.

    Example: max customers tag 12 VIP "Prefers English"
    """
    _tags(cli, customer, tags, remove=False)


@command(app, "untag")
def untag(
    cli: Cli, customer: CustomerArg, tags: Annotated[list[str], typer.Argument(help="Tags to remove.")]
) -> None:
    """Remove tags from a customer.

    Example: max customers untag 12 VIP
    """
    _tags(cli, customer, tags, remove=True)


class _Resolver:
    """Finds the customer of a CSV row: ``customer_id``, or ``channel`` + ``identity``."""

    def __init__(self, client: MaxClient) -> None:
        self.client = client
        self.cache: dict[tuple[str, str], str] = {}

    def __call__(self, row: dict[str, str]) -> str:
        if row.get("customer_id"):
            return row["customer_id"]
        channel, identity = row.get("channel", ""), row.get("identity", "")
        if not (channel and identity):
            raise ValueError("give customer_id, or channel and identity")
        key = (channel, identity)
        if key not in self.cache:
            found = self.client.get(f"{BASE}/by-identity", channel=channel, external_id=identity)
            self.cache[key] = found["id"]
        return self.cache[key]


def _put_outcome(client: MaxClient, path: str, body: dict[str, Any]) -> str:
    """PUT and return what happened: ``created``, ``updated`` or ``unchanged``."""
    return str(client.request("PUT", path, json=body)["outcome"])


def _read(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return [
                {k.strip(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(handle)
            ]
    except OSError as exc:
        raise CliError(
            f"cannot read {path}: {exc.strerror}", exit_code=EXIT_USAGE, code="unreadable_file"
        ) from None


def _import(
    cli: Cli, path: Path, kind: str, id_column: str, body: Callable[[dict[str, str]], dict[str, Any]]
) -> None:
    rows = _read(path)
    client = cli.client()
    resolve = _Resolver(client)
    summary: dict[str, Any] = {
        "rows": len(rows),
        "created": 0,
        "updated": 0,
        "unchanged": 0,
        "failed": 0,
        "errors": [],
    }

    def each() -> Iterator[tuple[int, dict[str, str]]]:
        if cli.json:
            yield from enumerate(rows, start=2)
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        with Progress(
            TextColumn(f"Importing {kind}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=cli.err,
            transient=True,
        ) as progress:
            task = progress.add_task(kind, total=len(rows))
            for item in enumerate(rows, start=2):  # line 1 is the header
                yield item
                progress.advance(task)

    for line, row in each():
        external_id = row.get(id_column) or row.get("external_id", "")
        try:
            if not external_id:
                raise ValueError(f"missing {id_column}")
            customer = resolve(row)
            summary[_put_outcome(client, f"{BASE}/{customer}/{kind}/{external_id}", body(row))] += 1
        except (ApiError, ValueError) as exc:
            if isinstance(exc, ApiError) and exc.status in (0, 401, 403):
                raise  # the server or the token, not the row: stop here
            summary["failed"] += 1
            code = exc.code if isinstance(exc, ApiError) else "invalid_row"
            message = exc.message if isinstance(exc, ApiError) else str(exc)
            summary["errors"].append({"line": line, id_column: external_id, "code": code, "message": message})

    def human() -> None:
        for error in summary["errors"]:
            cli.err.print(
                f"line {error['line']} ({error[id_column] or '?'}): {error['message']}", markup=False
            )
        cli.line(
            f"{summary['rows']} rows: {summary['created']} created, {summary['updated']} updated, "
            f"{summary['unchanged']} unchanged, {summary['failed']} failed."
        )

    cli.emit(summary, human)
    if summary["failed"]:
        raise typer.Exit(1)


def _transaction(row: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        k: row.get(k) or None for k in ("currency", "status", "occurred_at", "description")
    }
    amount = "amount_minor" if row.get("amount_minor") else "amount"
    return {**body, amount: row.get(amount) or None}


def _ticket(row: dict[str, str]) -> dict[str, Any]:
    return {"subject": row.get("subject"), "status": row.get("status"), "url": row.get("url") or None}


FileArg = Annotated[Path, typer.Argument(help="A CSV file with a header row.", dir_okay=False)]


@command(app, "import-transactions")
def import_transactions(cli: Cli, file: FileArg) -> None:
    """Upsert transactions from CSV: transaction_id, customer_id (or channel + identity), amount
    (or amount_minor), currency, status, occurred_at, description. Bad rows are reported and
    skipped; the rest is imported (exit 1 if any row failed).

    Example: max customers import-transactions orders.csv
    """
    _import(cli, file, "transactions", "transaction_id", _transaction)


@command(app, "import-tickets")
def import_tickets(cli: Cli, file: FileArg) -> None:
    """Upsert tickets from CSV: ticket_id, customer_id (or channel + identity), subject, status, url.
    Bad rows are reported and skipped (exit 1 if any row failed).

    Example: max customers import-tickets tickets.csv --json
    """
    _import(cli, file, "tickets", "ticket_id", _ticket)


@command(app, "erase")
def erase(
    cli: Cli,
    customer: CustomerArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase a customer's personal data (admin). Conversations and messages stay, anonymous, for
    reports; the customer's next message starts a new customer. Cannot be undone.

    Example: max customers erase 42 --yes
    """
    if not yes:
        if cli.json:
            raise CliError(
                "erasure cannot be undone: add --yes", exit_code=EXIT_USAGE, code="confirmation_required"
            )
        typer.confirm(f"Erase customer {customer}'s personal data? This cannot be undone", abort=True)
    result = cli.client().post(f"{BASE}/{customer}/erase")
    cli.emit(
        result,
        lambda: cli.line(
            f"Erased customer {customer} ({len(result['customers'])} record(s)): {result['conversations']} "
            f"conversations and {result['messages']} messages kept without personal data."
        ),
    )
