"""``max canned``: canned responses (quick replies agents insert with ``/shortcut``)."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from max_cli.output import EXIT_FAILURE, EXIT_NOT_FOUND, EXIT_USAGE, Cli, CliError, command
from max_server.client import ApiError, MaxClient

app = typer.Typer(help="Canned responses: quick replies agents insert with /shortcut.", no_args_is_help=True)
PATH = "/api/v1/canned-responses"
RefArg = Annotated[str, typer.Argument(help="Response id, or its /shortcut (the one that applies to you).")]
TeamOption = Annotated[str | None, typer.Option("--team", help="A team's response (team slug or id).")]
PersonalOption = Annotated[bool, typer.Option("--personal", help="Your own response, visible only to you.")]
CSV_COLUMNS = ["shortcut", "title", "content", "category", "scope", "team"]
COLUMNS = [
    ("id", "ID"),
    ("shortcut", "SHORTCUT"),
    ("scope", "SCOPE"),
    ("team", "TEAM"),
    ("title", "TITLE"),
    ("category", "CATEGORY"),
    ("usage_count", "USES"),
    ("applies", "APPLIES"),
]


def _rows(responses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "applies": "yes" if r.get("effective") else "shadowed"} for r in responses]


def resolve(client: MaxClient, ref: str) -> str:
    """An id as given, or the id of the response ``/shortcut`` inserts for the caller."""
    if ref.isdigit():
        return ref
    shortcut = ref if ref.startswith("/") else "/" + ref
    for item in client.get(PATH)["responses"]:
        if item["shortcut"] == shortcut and item.get("effective"):
            return str(item["id"])
    raise CliError(
        f"no canned response {shortcut}", exit_code=EXIT_NOT_FOUND, code="canned_response_not_found"
    )


def show_response(cli: Cli, item: dict[str, Any]) -> None:
    cli.fields(
        [
            ("id", item["id"]),
            ("shortcut", item["shortcut"]),
            ("scope", item["scope"]),
            ("team", item.get("team")),
            ("title", item["title"]),
            ("category", item.get("category")),
            ("uses", item["usage_count"]),
            ("variables", ", ".join(item.get("variables") or []) or None),
        ]
    )
    cli.line("")
    cli.line(item["content"])


def _scope_body(team: str | None, personal: bool) -> dict[str, Any]:
    if team and personal:
        raise CliError("choose --team or --personal, not both", exit_code=EXIT_USAGE, code="usage")
    if personal:
        return {"personal": True}
    return {"team_id": team} if team else {}


@command(app, "add")
def add(
    cli: Cli,
    shortcut: Annotated[str, typer.Option(help="/ and lowercase letters, digits, _ or -.")],
    title: Annotated[str, typer.Option(help="What it is for.")],
    content: Annotated[str, typer.Option(help="The text; {{customer_name}}, {{order_id|fallback}} …")],
    team: TeamOption = None,
    personal: PersonalOption = False,
    category: Annotated[str | None, typer.Option(help="A label to group responses.")] = None,
) -> None:
    """Add a canned response: global (admins), a team's (--team) or your own (--personal).

    Example: max canned add --shortcut /hola --title Saludo --content "¡Hola {{customer_first_name|}}!"
    """
    body = {"shortcut": shortcut, "title": title, "content": content, "category": category}
    created = cli.client().post(PATH, {**body, **_scope_body(team, personal)})
    cli.emit(created, lambda: show_response(cli, created))


@command(app, "list")
def list_responses(
    cli: Cli,
    search: Annotated[
        str | None, typer.Option("--search", "-q", help="Shortcut prefix, shortcut, title, content.")
    ] = None,
    team: Annotated[str | None, typer.Option(help="Prefer this team's when teams share a shortcut.")] = None,
) -> None:
    """List the canned responses you may use (APPLIES shows which one /shortcut inserts).

    Example: max canned list -q pedido --json
    """
    result = cli.client().get(PATH, q=search, team=team)
    cli.emit(result, lambda: cli.table(_rows(result["responses"]), COLUMNS))


@command(app, "show")
def show(cli: Cli, ref: RefArg) -> None:
    """Show one canned response.

    Example: max canned show /greeting
    """
    client = cli.client()
    found = client.get(f"{PATH}/{resolve(client, ref)}")
    cli.emit(found, lambda: show_response(cli, found))


@command(app, "edit")
def edit(
    cli: Cli,
    ref: RefArg,
    shortcut: Annotated[str | None, typer.Option(help="New shortcut.")] = None,
    title: Annotated[str | None, typer.Option(help="New title.")] = None,
    content: Annotated[str | None, typer.Option(help="New text.")] = None,
    category: Annotated[str | None, typer.Option(help="New category (empty removes it).")] = None,
) -> None:
    """Change a canned response.

    Example: max canned edit /greeting --content "¡Hola {{customer_first_name|}}! ¿En qué te ayudo?"
    """
    changes = {
        k: v
        for k, v in {"shortcut": shortcut, "title": title, "content": content, "category": category}.items()
        if v is not None
    }
    if not changes:
        raise CliError(
            "nothing to change: give --shortcut, --title, --content or --category", exit_code=EXIT_USAGE
        )
    client = cli.client()
    updated = client.patch(f"{PATH}/{resolve(client, ref)}", changes)
    cli.emit(updated, lambda: show_response(cli, updated))


@command(app, "rm")
def remove(cli: Cli, ref: RefArg) -> None:
    """Delete a canned response.

    Example: max canned rm /old-promo
    """
    client = cli.client()
    response_id = resolve(client, ref)
    client.delete(f"{PATH}/{response_id}")
    cli.emit({"deleted": response_id}, lambda: cli.info(f"Deleted canned response {response_id}."))


@command(app, "render")
def render(
    cli: Cli,
    ref: RefArg,
    conversation: Annotated[str | None, typer.Option(help="Fill the context from this conversation.")] = None,
    var: Annotated[
        list[str] | None, typer.Option("--var", help="NAME=VALUE for a variable (repeatable).")
    ] = None,
) -> None:
    """Show a response with its variables filled (fails naming any still missing).

    Example: max canned render /order-ready --conversation 12 --var order_id=ORD-123
    """
    values: dict[str, str] = {}
    for item in var or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise CliError(f"--var {item!r}: write NAME=VALUE", exit_code=EXIT_USAGE, code="usage")
        values[name.strip()] = value
    client = cli.client()
    result = client.post(
        f"{PATH}/{resolve(client, ref)}/render", {"conversation_id": conversation, "variables": values}
    )
    cli.emit(result, lambda: cli.line(result["text"]))


@command(app, "import")
def import_csv(
    cli: Cli,
    file: Annotated[
        Path, typer.Argument(help="CSV with shortcut,title,content[,category,scope,team].", exists=True)
    ],
    team: Annotated[str | None, typer.Option(help="Team for rows that name none.")] = None,
    personal: PersonalOption = False,
) -> None:
    """Import canned responses from a CSV file; a bad row is reported and the rest go on.

    Example: max canned import respuestas.csv --team support
    """
    client = cli.client()
    created: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    with file.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"shortcut", "title", "content"} - {c.strip().lower() for c in reader.fieldnames or []}
        if missing:
            raise CliError(f"the CSV needs the columns {', '.join(sorted(missing))}", exit_code=EXIT_USAGE)
        line = reader.line_num
        for raw in reader:
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
            where, line = line + 1, reader.line_num
            try:
                body = {
                    "shortcut": row["shortcut"],
                    "title": row["title"],
                    "content": row["content"],
                    "category": row.get("category") or None,
                    **_row_scope(row, team, personal),
                }
                made = client.post(PATH, body)
                created.append({"row": where, "id": made["id"], "shortcut": made["shortcut"]})
            except (ApiError, CliError) as exc:
                errors.append({"row": where, "shortcut": row.get("shortcut"), **_error(exc)})
    result = {"created": created, "errors": errors}

    def human() -> None:
        cli.line(f"Imported {len(created)} canned responses; {len(errors)} rows failed.")
        for error in errors:
            cli.line(f"  line {error['row']} ({error['shortcut'] or '?'}): {error['message']}")

    cli.emit(result, human)
    if errors:
        raise typer.Exit(EXIT_FAILURE)


def _row_scope(row: dict[str, str], team: str | None, personal: bool) -> dict[str, Any]:
    scope = row.get("scope", "").lower()
    row_team = row.get("team") or None
    if scope == "personal" or (not scope and not row_team and personal):
        return {"personal": True}
    if scope == "global":
        return {}
    if scope in ("", "team"):
        chosen = row_team or team
        if scope == "team" and not chosen:
            raise CliError(
                "scope team needs a team column or --team", exit_code=EXIT_USAGE, code="missing_team"
            )
        return {"team_id": chosen} if chosen else {}
    raise CliError(
        f"unknown scope {scope!r}: global, team or personal", exit_code=EXIT_USAGE, code="invalid_scope"
    )


def _error(exc: ApiError | CliError) -> dict[str, Any]:
    return {"code": exc.code, "message": exc.message}


@command(app, "export")
def export(
    cli: Cli,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the CSV here (default stdout).")
    ] = None,
) -> None:
    """Export the canned responses you may see as CSV (importable with `max canned import`).

    Example: max canned export -o respuestas.csv
    """
    responses = cli.client().get(PATH)["responses"]
    if cli.json:
        cli.emit({"responses": responses, "next_cursor": None})
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for item in responses:
        writer.writerow(
            {
                "shortcut": item["shortcut"],
                "title": item["title"],
                "content": item["content"],
                "category": item.get("category") or "",
                "scope": item["scope"],
                "team": (item.get("team") or {}).get("slug", ""),
            }
        )
    if output is None:
        sys.stdout.write(buffer.getvalue())
        sys.stdout.flush()
    else:
        output.write_text(buffer.getvalue(), encoding="utf-8")
        cli.info(f"Wrote {len(responses)} canned responses to {output}.")
