"""``max server run``: the daemon (API, and the worker and scheduler)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

import typer

from max_cli import local
from max_cli.output import Cli, CliError, command

app = typer.Typer(help="Run the MAX server.", no_args_is_help=True)


def _quiet_exit_server() -> type:
    import uvicorn

    class QuietExitServer(uvicorn.Server):
        """uvicorn re-raises SIGTERM after a graceful shutdown (exit status -15); a daemon that
        shut down cleanly should exit 0, so we handle the signals without re-raising them."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return QuietExitServer


@command(app, "run", connects=False)
def run(
    cli: Cli,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (server.host).")] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (server.port).", min=1, max=65535)
    ] = None,
    config: Annotated[
        str | None, typer.Option("--config", "-c", envvar="MAX_CONFIG", help="Config file (TOML).")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Server processes on this machine (use PostgreSQL for more than 1).", min=1, max=64
        ),
    ] = 1,
    log_format: Annotated[
        Literal["text", "json"] | None, typer.Option(help="text, or json: one object per line.")
    ] = None,
    log_level: Annotated[
        Literal["debug", "info", "warning", "error"] | None, typer.Option(help="Log level.")
    ] = None,
) -> None:
    """Serve the API, webhooks and background work until SIGTERM or Ctrl-C.

    Example: max server run --config /etc/max/config.toml --workers 4 --log-format json
    """
    import uvicorn

    from max_server import logs
    from max_server.db import redact_url

    settings = local.load(config)
    server = settings.server.model_copy(
        update={
            k: v
            for k, v in {"host": host, "port": port, "log_format": log_format, "log_level": log_level}.items()
            if v is not None
        }
    )
    settings = settings.model_copy(update={"server": server})
    if workers > 1 and settings.is_sqlite:
        raise CliError(
            "--workers > 1 needs PostgreSQL (SQLite has a single writer): set database.url",
            code="config_error",
        )
    logs.configure(server.log_level, server.log_format, logs.settings_secrets(settings))
    db = local.open_database(settings)
    try:
        local.ensure_schema(db, settings)
    finally:
        db.dispose()

    import logging

    logging.getLogger("max.server").info(
        "MAX listening on http://%s:%s (database %s, %d process%s)",
        server.host,
        server.port,
        redact_url(settings.database_url),
        workers,
        "" if workers == 1 else "es",
    )
    common = {
        "host": server.host,
        "port": server.port,
        "log_config": None,
        "access_log": False,
        "proxy_headers": True,
        "timeout_graceful_shutdown": 10,
        "server_header": False,
    }
    if workers == 1:
        from max_server.app import create_app

        config_ = uvicorn.Config(create_app(settings), **common)  # type: ignore[arg-type]
        _quiet_exit_server()(config_).run()
        return
    # Child processes rebuild the settings from the same file and environment, plus our flags.
    if config:
        os.environ["MAX_CONFIG"] = str(Path(config).resolve())
    for key, value in server.model_dump().items():
        if key in ("host", "port", "log_format", "log_level"):
            os.environ[f"MAX_SERVER__{key.upper()}"] = str(value)
    from max_server.serve import run_workers  # uvicorn's supervisor, minding PROMETHEUS_MULTIPROC_DIR

    run_workers("max_server.app:create_app_from_env", workers, factory=True, **common)
