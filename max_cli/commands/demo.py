"""``max demo``: MAX working on this machine in one command (server, WhatsApp sandbox, simulated
customers, a webhook receiver, and the console). Server code loads inside the command only."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from max_cli.output import EXIT_USAGE, Cli, CliError, command

if TYPE_CHECKING:
    from textual.app import App

    from max_server.demo.runner import DemoInfo

DEFAULT_PACE = 3.0  # max_server.demo.runner.DEFAULT_PACE, repeated so --help needs no server code
DEFAULT_URGENT_FRT = "1m"  # max_server.demo.seed.SHORT_FRT_S, likewise
MAX_URGENT_FRT_S = 600


def register(app: typer.Typer) -> None:
    @command(app, "demo", connects=False)
    def demo(
        cli: Cli,
        data: Annotated[
            Path | None,
            typer.Option(
                "--data",
                help="Keep the database, media and config in DIR (reused on the next run). "
                "Default: a temporary directory, removed when the demo stops.",
                file_okay=False,
            ),
        ] = None,
        port: Annotated[
            int, typer.Option(help="The server's port on 127.0.0.1 (0: any free port).", min=0, max=65535)
        ] = 0,
        pace: Annotated[
            float, typer.Option(help="Seconds between the simulated customers' messages.", min=0.05, max=600)
        ] = DEFAULT_PACE,
        urgent_frt: Annotated[
            str,
            typer.Option(
                "--urgent-frt",
                help="First-response target of the urgent request, which breaches it (30s, 2m; at most 10m).",
            ),
        ] = DEFAULT_URGENT_FRT,
        headless: Annotated[
            bool,
            typer.Option(
                "--headless",
                help="No console: print MAX_URL and MAX_TOKEN (the first two lines), then run "
                "until Ctrl-C or SIGTERM.",
            ),
        ] = False,
    ) -> None:
        """Run MAX with simulated customers; open the console as a demo agent.

        A throwaway SQLite database and media folder are seeded with teams,
        business hours, SLA policies, canned responses, skills, approved
        templates and a webhook subscription to a local receiver that verifies
        every delivery. Customers write on WhatsApp (through a local Graph API
        sandbox) and on the Chat App. Quitting the console stops everything.

        With --headless, the first two lines are MAX_URL=… and MAX_TOKEN=… (an
        admin's token, for the CLI in another terminal); later lines give the
        agent's token, the sandbox's URL and the demo's config file.

        Example: max demo --headless --pace 1
        """
        from max_server.demo.config import ForeignDataDir
        from max_server.demo.runner import Demo, DemoOptions
        from max_server.domain.durations import parse_duration

        try:
            urgent_frt_s = parse_duration(urgent_frt)
        except ValueError as exc:
            raise CliError(f"--urgent-frt: {exc}", code="invalid_value", exit_code=EXIT_USAGE) from None
        if not 1 <= urgent_frt_s <= MAX_URGENT_FRT_S:
            raise CliError("--urgent-frt: between 1s and 10m", code="invalid_value", exit_code=EXIT_USAGE)
        runner = Demo(
            DemoOptions(
                data=data,
                port=port,
                pace=pace,
                stderr_log_level="warning" if headless else None,
                urgent_frt_s=urgent_frt_s,
            )
        )
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            try:
                info = runner.start()
            except ForeignDataDir as exc:
                raise CliError(str(exc), code="foreign_data_dir", exit_code=EXIT_USAGE) from None
            except OSError as exc:
                raise CliError(f"the demo could not start: {exc}", code="demo_failed") from None
            if headless:
                _announce(cli, info)
                while not stop.wait(0.5):
                    pass
            else:
                _console(info, stop)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            runner.stop()
        cli.info("Demo stopped." + ("" if data is None else f" Its data stays in {runner.data_dir}."))
        # Everything is stopped and closed. The interpreter's last garbage collections would walk
        # every object the server, the console and their libraries made: a second or more after
        # Ctrl+Q on a busy machine, for nothing. Frozen objects are left to the process's exit.
        gc.freeze()


def _announce(cli: Cli, info: DemoInfo) -> None:
    """The contract: ``MAX_URL=`` and ``MAX_TOKEN=`` first, flushed, then the rest."""
    try:
        _write(cli, info)
    except BrokenPipeError:
        # The reader took what it wanted (``max demo --headless | head -2``) and left: the demo
        # goes on, and later writes (and the interpreter's final flush) go nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _write(cli: Cli, info: DemoInfo) -> None:
    out = sys.stdout
    out.write(f"MAX_URL={info.url}\nMAX_TOKEN={info.admin_token}\n")
    out.flush()
    if cli.json:
        out.write(json.dumps(info.as_dict(), ensure_ascii=False) + "\n")
    else:
        out.write(
            f"MAX_AGENT_TOKEN={info.agent_token}\n"
            f"MAX_SANDBOX_URL={info.sandbox_url}\n"
            f"MAX_CONFIG={info.config_path}\n"
            f"# The agent token is {info.agent_name}'s: max tui --url {info.url} --token $MAX_AGENT_TOKEN\n"
            f"# A customer writes: curl -X POST {info.sandbox_url}/_sandbox/customer-message "
            f'-H \'Content-Type: application/json\' -d \'{{"to_url": "{info.url}", '
            f'"from": "5215500000000", "name": "Ana", "text": "Hola"}}\'\n'
            f"# Webhooks received and verified: {info.data_dir / 'webhooks.jsonl'}\n"
            f"# Server log: {info.log_path}\n"
            f"# Check the setup: max doctor --config {info.config_path}\n"
            "# Press Ctrl-C to stop.\n"
        )
    out.flush()


def _console(info: DemoInfo, stop: threading.Event) -> None:
    """The console as the demo agent, in this terminal; SIGTERM closes it like ctrl+q."""
    from max_tui.app import MaxApp

    console = MaxApp(info.url, info.agent_token, data_dir=info.data_dir / "console")
    watcher = threading.Thread(target=_exit_on, args=(stop, console), daemon=True)
    watcher.start()
    console.run()
    stop.set()


def _exit_on(stop: threading.Event, console: App[None]) -> None:
    stop.wait()
    if console.is_running:
        with contextlib.suppress(RuntimeError):  # it closed meanwhile
            console.call_from_thread(console.exit)
