"""``max channels``: WhatsApp numbers and the Chat App."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from max_cli.output import Cli, command

app = typer.Typer(help="Channel accounts: WhatsApp business numbers and the Chat App.", no_args_is_help=True)
ChannelArg = Annotated[str, typer.Argument(help="Channel id or WhatsApp phone_number_id.")]
COLUMNS = [
    ("id", "ID"),
    ("kind", "KIND"),
    ("external_id", "EXTERNAL ID"),
    ("name", "NAME"),
    ("display_number", "NUMBER"),
    ("default_team", "DEFAULT TEAM"),
]


def show_channel(cli: Cli, channel: dict[str, Any]) -> None:
    cli.fields(
        [(title.lower(), channel.get(key)) for key, title in COLUMNS] + [("waba id", channel.get("waba_id"))]
    )


@command(app, "list")
def list_channels(cli: Cli) -> None:
    """List channel accounts.

    Example: max channels list --json
    """
    found = list(cli.client().paginate("/api/v1/channels", "channels"))
    cli.emit(
        {"channels": found, "next_cursor": None}, lambda: cli.table(found, COLUMNS, empty="No channels yet.")
    )


@command(app, "show")
def show(cli: Cli, channel: ChannelArg) -> None:
    """Show one channel account.

    Example: max channels show 1122334455667
    """
    found = cli.client().get(f"/api/v1/channels/{channel}")
    cli.emit(found, lambda: show_channel(cli, found))


@command(app, "add-whatsapp")
def add_whatsapp(
    cli: Cli,
    phone_number_id: Annotated[str, typer.Option(help="Meta's phone_number_id.")],
    waba_id: Annotated[str | None, typer.Option(help="The WhatsApp Business Account id.")] = None,
    display_number: Annotated[str | None, typer.Option(help="The number as customers see it.")] = None,
    name: Annotated[str | None, typer.Option(help="A name for people.")] = None,
    default_team: Annotated[str | None, typer.Option(help="Team slug for new conversations.")] = None,
) -> None:
    """Add another WhatsApp business number.

    Example: max channels add-whatsapp --phone-number-id 106540352242922 --default-team sales
    """
    body = {
        "phone_number_id": phone_number_id,
        "waba_id": waba_id,
        "display_number": display_number,
        "name": name,
        "default_team": default_team,
    }
    found = cli.client().post("/api/v1/channels/whatsapp", body)
    cli.emit(found, lambda: show_channel(cli, found))


@command(app, "update")
def update(
    cli: Cli,
    channel: ChannelArg,
    waba_id: Annotated[str | None, typer.Option(help="The WhatsApp Business Account id ('' clears).")] = None,
    display_number: Annotated[str | None, typer.Option(help="The number as customers see it.")] = None,
    name: Annotated[str | None, typer.Option(help="A name for people.")] = None,
) -> None:
    """Change a channel's name, WABA id or display number (e.g. one MAX added from a webhook).

    Example: max channels update 106540352242922 --waba-id 1234567890 --name "Ventas"
    """
    fields = {"waba_id": waba_id, "display_number": display_number, "name": name}
    body = {key: value for key, value in fields.items() if value is not None}
    found = cli.client().patch(f"/api/v1/channels/{channel}", body)
    cli.emit(found, lambda: show_channel(cli, found))


@command(app, "set-default-team")
def set_default_team(
    cli: Cli, channel: ChannelArg, team: Annotated[str, typer.Argument(help="Team slug, or `none`.")]
) -> None:
    """Choose the team new conversations on this channel start in.

    Example: max channels set-default-team 1122334455667 support
    """
    found = cli.client().put(
        f"/api/v1/channels/{channel}/default-team", {"team": None if team == "none" else team}
    )
    cli.emit(found, lambda: show_channel(cli, found))
