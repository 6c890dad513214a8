"""``max login`` / ``max logout``: remember the server and token for this user."""

from __future__ import annotations

from typing import Annotated

import typer

from max_cli.connection import login_file, remove_login, write_login
from max_cli.output import Cli, CliError, command
from max_server.client import MaxClient


def register(app: typer.Typer) -> None:
    @command(app, "login", connects=False)
    def login(
        cli: Cli,
        url: Annotated[
            str, typer.Option("--url", envvar="MAX_URL", help="Server URL, e.g. https://max.example.com.")
        ],
        token: Annotated[
            str,
            typer.Option(
                "--token", envvar="MAX_TOKEN", help="Your API token (max_…).", prompt=True, hide_input=True
            ),
        ],
    ) -> None:
        """Check a server URL and token, then store them (mode 0600) for later commands.

        Example: max login --url https://max.example.com --token max_…
        """
        if not token.startswith("max_"):
            raise CliError(
                "that is not a MAX token (they start with max_)", exit_code=2, code="validation_error"
            )
        with MaxClient(url, token) as client:
            me = client.get("/api/v1/me")
        path = write_login(url.rstrip("/"), token)
        cli.emit(
            {"url": url.rstrip("/"), "user": me, "file": str(path)},
            lambda: cli.line(
                f"Logged in to {url} as {me['name']} <{me['email']}> ({me['role']}); saved to {path}"
            ),
        )

    @command(app, "logout", connects=False)
    def logout(cli: Cli) -> None:
        """Forget the stored server and token.

        Example: max logout
        """
        removed = remove_login()
        cli.emit(
            {"removed": removed, "file": str(login_file())},
            lambda: cli.line("Logged out." if removed else "Not logged in."),
        )
