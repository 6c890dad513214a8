"""``max hours``: teams' business hours, holidays and after-hours message."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer

from max_cli.output import EXIT_USAGE, Cli, CliError, command
from max_server.domain.hours import parse_days

app = typer.Typer(help="Business hours, holidays and the after-hours message of teams.", no_args_is_help=True)
holidays_app = typer.Typer(help="A team's holidays (closed all day).", no_args_is_help=True)
app.add_typer(holidays_app, name="holidays")

TeamOption = Annotated[str, typer.Option("--team", help="Team slug or id.")]


def _path(team: str, tail: str = "") -> str:
    return f"/api/v1/hours/{team}{tail}"


def _days(text: str) -> list[int]:
    try:
        return parse_days(text)
    except ValueError as exc:
        raise CliError(str(exc), exit_code=EXIT_USAGE, code="invalid_days") from None


def show_hours(cli: Cli, hours: dict[str, Any]) -> None:
    team = hours["team"]
    cli.line(f"{team['name']} ({team['slug']}) — {hours['timezone']}")
    if not hours["intervals"]:
        cli.line("  no weekly hours: always open")
    for item in hours["intervals"]:
        note = "  (past midnight)" if item.get("overnight") else ""
        cli.line(f"  {item['day']}  {item['opens']}–{item['closes']}{note}")
    if hours.get("holidays"):
        cli.line("  holidays: " + ", ".join(h["date"] for h in hours["holidays"][:10]))
    if hours.get("after_hours_message"):
        cli.line(f"  after hours: {hours['after_hours_message']}")


@command(app, "set")
def set_hours(
    cli: Cli,
    team: TeamOption,
    days: Annotated[str, typer.Option(help="mon-fri, sat,sun, mon,wed-fri, all.")],
    open_: Annotated[str, typer.Option("--open", help="HH:MM, team time.")],
    close: Annotated[str, typer.Option(help="HH:MM; at or before --open runs past midnight.")],
    timezone: Annotated[str | None, typer.Option(help="Also set the team's IANA time zone.")] = None,
    add: Annotated[
        bool, typer.Option("--add", help="Add this interval instead of replacing those days'.")
    ] = False,
) -> None:
    """Set the opening hours of some days (replacing their intervals unless --add).

    Example: max hours set --team support --days mon-fri --open 09:00 --close 18:00
    """
    body = {"days": _days(days), "opens": open_, "closes": close, "add": add, "timezone": timezone}
    result = cli.client().post(_path(team, "/days"), body)
    cli.emit(result, lambda: show_hours(cli, result))


@command(app, "show")
def show(
    cli: Cli, team: Annotated[str | None, typer.Option("--team", help="One team (default all).")] = None
) -> None:
    """Show business hours (of one team, or of every team).

    Example: max hours show --team support
    """
    client = cli.client()
    if team:
        result = client.get(_path(team))
        cli.emit(result, lambda: show_hours(cli, result))
        return
    teams = [client.get(_path(t["slug"])) for t in client.paginate("/api/v1/teams", "teams")]

    def human() -> None:
        for hours in teams:
            show_hours(cli, hours)

    cli.emit({"hours": teams}, human)


@command(app, "clear")
def clear(
    cli: Cli,
    team: TeamOption,
    days: Annotated[str | None, typer.Option(help="Only these days (default: the whole week).")] = None,
) -> None:
    """Remove weekly hours (a team with none is always open; holidays stay).

    Example: max hours clear --team support --days sat,sun
    """
    result = cli.client().delete(_path(team), days=_days(days) if days else None)
    cli.emit(result, lambda: show_hours(cli, result))


@command(app, "message")
def message(
    cli: Cli,
    team: TeamOption,
    text: Annotated[
        str, typer.Argument(help='The reply; "" removes it. Variables: {{customer_first_name|}} …')
    ],
) -> None:
    """Set the reply a new conversation gets outside business hours.

    Example: max hours message --team support "Hola {{customer_first_name|}}, abrimos a las 9:00."
    """
    result = cli.client().put(_path(team, "/message"), {"message": text})
    cli.emit(result, lambda: show_hours(cli, result))


@command(app, "check")
def check(
    cli: Cli,
    team: TeamOption,
    at: Annotated[str | None, typer.Option(help="ISO 8601 with offset (default now).")] = None,
) -> None:
    """Is the team open at a time? When does it next open and close?

    Example: max hours check --team support --at 2027-01-04T08:30:00-06:00 --json
    """
    result = cli.client().get(_path(team, "/check"), at=at)

    def human() -> None:
        state = "open" if result["is_open"] else "closed"
        cli.line(f"{result['team']} is {state} at {result['at']}")
        cli.line(f"  next opening: {result['next_open'] or '-'}")
        cli.line(f"  next closing: {result['next_close'] or 'never'}")

    cli.emit(result, human)


@command(holidays_app, "add")
def add_holiday(
    cli: Cli,
    team: TeamOption,
    day: Annotated[str, typer.Option("--date", help="YYYY-MM-DD.")],
    name: Annotated[str, typer.Option(help="What it is.")] = "",
) -> None:
    """Add a holiday (the team is closed that whole day).

    Example: max hours holidays add --team support --date 2027-12-24 --name "Nochebuena"
    """
    result = cli.client().post(_path(team, "/holidays"), {"date": _date(day), "name": name})
    cli.emit(result, lambda: cli.line(f"{result['date']}  {result['name']}"))


@command(holidays_app, "list")
def list_holidays(
    cli: Cli, team: TeamOption, year: Annotated[int | None, typer.Option(help="Only this year.")] = None
) -> None:
    """List a team's holidays.

    Example: max hours holidays list --team support --year 2027
    """
    result = cli.client().get(_path(team, "/holidays"), year=year)
    cli.emit(result, lambda: cli.table(result["holidays"], [("date", "DATE"), ("name", "NAME")]))


@command(holidays_app, "rm")
def remove_holiday(
    cli: Cli, team: TeamOption, day: Annotated[str, typer.Option("--date", help="YYYY-MM-DD.")]
) -> None:
    """Remove a holiday.

    Example: max hours holidays rm --team support --date 2027-12-24
    """
    cli.client().delete(_path(team, f"/holidays/{_date(day)}"))
    cli.emit({"deleted": _date(day)}, lambda: cli.info(f"Removed the holiday of {_date(day)}."))


@command(holidays_app, "import")
def import_holidays(
    cli: Cli,
    team: TeamOption,
    country: Annotated[str, typer.Option(help="ISO country code, e.g. MX.")],
    year: Annotated[int, typer.Option(help="The year.")],
    subdivision: Annotated[str | None, typer.Option(help="State or province code, e.g. CMX.")] = None,
    language: Annotated[str | None, typer.Option(help="Names' language, e.g. es.")] = None,
) -> None:
    """Import a country's public holidays for a year (from the `holidays` package).

    Example: max hours holidays import --team support --country MX --year 2027
    """
    body = {"country": country, "year": year, "subdivision": subdivision, "language": language}
    result = cli.client().post(_path(team, "/holidays/import"), body)

    def human() -> None:
        cli.line(f"Added {result['added']} holidays ({result['existing']} were there already).")
        cli.table(result["holidays"], [("date", "DATE"), ("name", "NAME")])

    cli.emit(result, human)


def _date(text: str) -> str:
    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise CliError(
            f"{text!r} is not a date: use YYYY-MM-DD", exit_code=EXIT_USAGE, code="invalid_date"
        ) from None
