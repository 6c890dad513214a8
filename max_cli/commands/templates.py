"""``max templates``: WhatsApp message templates (admins create, delete and sync; agents read)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from max_cli.output import EXIT_NOT_FOUND, Cli, CliError, command
from max_server.client import ApiError

app = typer.Typer(
    help="WhatsApp message templates: submit for approval, list, show, delete, sync.", no_args_is_help=True
)
PATH = "/api/v1/whatsapp-templates"
COLUMNS = [
    ("id", "ID"),
    ("name", "NAME"),
    ("language", "LANGUAGE"),
    ("category", "CATEGORY"),
    ("status", "STATUS"),
    ("parameter_count", "PARAMS"),
    ("quality", "QUALITY"),
    ("rejection_reason", "REASON"),
]


def show_template(cli: Cli, template: dict[str, Any]) -> None:
    keys = [key for key, _ in COLUMNS] + ["whatsapp_template_id", "created_by", "updated_at", "body"]
    cli.fields([(k.replace("_", " "), template.get(k)) for k in keys])


@command(app, "create")
def create(
    cli: Cli,
    name: Annotated[str, typer.Option(help="Lowercase letters, digits and underscores.")],
    language: Annotated[str, typer.Option(help="WhatsApp language code: es, en_US, pt_BR …")],
    category: Annotated[str, typer.Option(help="MARKETING, UTILITY or AUTHENTICATION.")],
    body: Annotated[str, typer.Option(help="Body text with {{1}}, {{2}} … (at most 1024 characters).")],
    example: Annotated[
        list[str] | None, typer.Option("--example", help="An example value per body variable, in order.")
    ] = None,
    header: Annotated[str | None, typer.Option(help="Header text (at most 60; one {{1}} allowed).")] = None,
    header_example: Annotated[str | None, typer.Option(help="Example value of the header's {{1}}.")] = None,
    footer: Annotated[str | None, typer.Option(help="Footer text (at most 60, no variables).")] = None,
    channel: Annotated[str | None, typer.Option(help="WhatsApp channel id or phone_number_id.")] = None,
) -> None:
    """Submit a template to WhatsApp for approval; it starts PENDING.

    Example: max templates create --name hola --language es --category UTILITY --body "Hi {{1}}" --example Jo
    """
    components: list[dict[str, Any]] = []
    if header is not None:
        head: dict[str, Any] = {"type": "HEADER", "format": "TEXT", "text": header}
        if header_example is not None:
            head["example"] = {"header_text": [header_example]}
        components.append(head)
    main: dict[str, Any] = {"type": "BODY", "text": body}
    if example:
        main["example"] = {"body_text": [list(example)]}
    components.append(main)
    if footer is not None:
        components.append({"type": "FOOTER", "text": footer})
    request = {"name": name, "language": language, "category": category, "components": components}
    if channel:
        request["channel"] = channel
    created = cli.client().post(PATH, request)

    def human() -> None:
        show_template(cli, created)
        cli.info(created.get("message", ""))

    cli.emit(created, human)


@command(app, "list")
def list_templates(
    cli: Cli,
    status: Annotated[str | None, typer.Option(help="Only this status: APPROVED, PENDING, …")] = None,
    language: Annotated[str | None, typer.Option(help="Only this language.")] = None,
    name: Annotated[str | None, typer.Option(help="Only this name.")] = None,
) -> None:
    """List templates with their status.

    Example: max templates list --status APPROVED --json
    """
    items = list(cli.client().paginate(PATH, "templates", status=status, language=language, name=name))
    cli.emit(
        {"templates": items, "next_cursor": None},
        lambda: cli.table(items, COLUMNS, empty="No templates."),
    )


def _by_ref(cli: Cli, ref: str, language: str | None) -> list[dict[str, Any]]:
    if ref.isdigit() and language is None:
        try:
            return [cli.client().get(f"{PATH}/{ref}")]
        except ApiError as exc:
            if exc.status != 404:
                raise
    found = list(cli.client().paginate(PATH, "templates", name=ref, language=language))
    if not found:
        which = f"{ref} ({language})" if language else ref
        raise CliError(f"template {which} not found", exit_code=EXIT_NOT_FOUND, code="template_not_found")
    return found


@command(app, "show")
def show(
    cli: Cli,
    ref: Annotated[str, typer.Argument(help="Template id, or name (every language unless --language).")],
    language: Annotated[str | None, typer.Option(help="Only this language.")] = None,
) -> None:
    """Show a template: status, Meta's reason, body and parameter count.

    Example: max templates show order_shipped --language es
    """
    found = _by_ref(cli, ref, language)
    data: Any = found[0] if len(found) == 1 else {"templates": found, "next_cursor": None}

    def human() -> None:
        for index, template in enumerate(found):
            if index:
                cli.line("")
            show_template(cli, template)

    cli.emit(data, human)


@command(app, "delete")
def delete(
    cli: Cli,
    name: Annotated[str, typer.Argument(help="Template name.")],
    language: Annotated[
        str | None, typer.Option(help="Delete only this language (default: every language).")
    ] = None,
    channel: Annotated[str | None, typer.Option(help="WhatsApp channel id or phone_number_id.")] = None,
) -> None:
    """Delete a template at WhatsApp and here: one language, or all of them.

    Example: max templates delete order_shipped --language es
    """
    result = cli.client().delete(PATH, name=name, language=language, channel=channel)
    deleted = result["deleted"]
    cli.emit(
        result,
        lambda: cli.line("Deleted " + ", ".join(f"{t['name']} ({t['language']})" for t in deleted) + "."),
    )


@command(app, "sync")
def sync(cli: Cli) -> None:
    """Pull WhatsApp's template list now (it also runs every 15 minutes).

    Example: max templates sync --json
    """
    result = cli.client().post(f"{PATH}/sync")
    cli.emit(
        result,
        lambda: cli.line(
            f"{result['added']} added, {result['updated']} updated, {result['unchanged']} unchanged, "
            f"{result['removed']} gone from WhatsApp."
        ),
    )
