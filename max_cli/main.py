"""The ``max`` command: ``max <noun> <verb>``; see ``max --help``."""

from __future__ import annotations

import typer

from max_cli.commands import (
    channels,
    conversations,
    db,
    events,
    jobs,
    login,
    sandbox,
    server,
    teams,
    tokens,
    users,
)

app = typer.Typer(
    name="max",
    help="MAX: customer service on WhatsApp and your Chat App. Every command takes --json.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(server.app, name="server")
app.add_typer(db.app, name="db")
app.add_typer(users.app, name="users")
app.add_typer(tokens.app, name="tokens")
app.add_typer(teams.app, name="teams")
app.add_typer(channels.app, name="channels")
app.add_typer(conversations.app, name="conversations")
app.add_typer(jobs.app, name="jobs")
app.add_typer(events.app, name="events")
app.add_typer(sandbox.app, name="sandbox")
login.register(app)


@app.command("version")
def version() -> None:
    """Print the version."""
    from max_server import __version__

    typer.echo(__version__)


def run() -> None:
    app()
