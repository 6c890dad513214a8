"""``max tui``: the agent console (Textual). The console is imported only when the command runs,
so ``max --help`` stays fast."""

from __future__ import annotations

import typer

from max_cli.output import EXIT_AUTH, Cli, CliError, command


def register(app: typer.Typer) -> None:
    @command(app, "tui")
    def tui(cli: Cli) -> None:
        """Open the agent console: the live queue, conversations and replies.

        The server and token come from --url/--token, MAX_URL/MAX_TOKEN, or `max login`.

        Keys are shown in the footer; ctrl+p lists every command; ctrl+q quits.

        Example: max tui --url https://max.example.com
        """
        connection = cli.connection
        if not connection.token:
            raise CliError(
                "no API token: run `max login --url URL --token TOKEN`, or set MAX_URL and MAX_TOKEN",
                exit_code=EXIT_AUTH,
                code="missing_token",
            )
        from max_tui.app import MaxApp

        MaxApp(connection.url, connection.token).run()
