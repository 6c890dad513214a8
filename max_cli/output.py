"""CLI conventions: ``--json`` everywhere, tables for people, data on stdout, diagnostics on stderr.

Exit codes: 0 ok, 1 failure, 2 usage, 3 not found, 4 auth. With ``--json`` errors are printed to
stderr as ``{"error": {...}}``, usage errors included (:class:`MaxGroup`). ``NO_COLOR`` turns off
colour and every other escape code, even on a terminal.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from typer._click.exceptions import UsageError  # typer ships its own click; these are its errors
from typer.core import TyperGroup

if typing.TYPE_CHECKING:
    from rich.console import Console

from max_cli.connection import Connection, resolve
from max_server.client import ApiError, MaxClient

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_AUTH = 0, 1, 2, 3, 4


class CliError(Exception):
    """A failure to report in one line, with its exit code and a stable error code."""

    def __init__(
        self, message: str, *, exit_code: int = EXIT_FAILURE, code: str = "error", details: Any = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.code = code
        self.details = details


def exit_code_for(error: ApiError) -> int:
    if error.status in (401, 403):
        return EXIT_AUTH
    if error.status == 404:
        return EXIT_NOT_FOUND
    if error.status == 422 or (error.status == 400 and error.code == "validation_error"):
        return EXIT_USAGE  # the input was wrong: fix the command
    return EXIT_FAILURE


@dataclass
class Cli:
    """What every command receives: output mode and the (lazy) connection to the server."""

    json: bool = False
    url: str | None = None
    token: str | None = None
    _out: Console | None = None
    _err: Console | None = None
    _client: MaxClient | None = None

    @property
    def out(self) -> Console:
        """stdout for people (rich is imported on first use: ``max --help`` stays fast)."""
        if self._out is None:
            self._out = _console(stderr=False)
        return self._out

    @property
    def err(self) -> Console:
        if self._err is None:
            self._err = _console(stderr=True)
        return self._err

    @property
    def connection(self) -> Connection:
        return resolve(self.url, self.token)

    def has_token(self) -> bool:
        return bool(self.connection.token)

    def client(self) -> MaxClient:
        if self._client is None:
            conn = self.connection
            if not conn.token:
                raise CliError(
                    "no API token: run `max login --url URL --token TOKEN`, or set MAX_URL and MAX_TOKEN",
                    exit_code=EXIT_AUTH,
                    code="missing_token",
                )
            self._client = MaxClient(conn.url, conn.token)
        return self._client

    # Output ---------------------------------------------------------------------------
    def emit(self, data: Any, human: Callable[[], None] | None = None) -> None:
        """Prints ``data`` as JSON with ``--json``, otherwise runs ``human`` (or prints JSON)."""
        if self.json or human is None:
            sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
            sys.stdout.flush()
        else:
            human()

    def line(self, text: str) -> None:
        self.out.print(text, highlight=False, markup=False)

    def info(self, text: str) -> None:
        """A diagnostic on stderr (never mixed into data)."""
        if not self.json:
            self.err.print(text, highlight=False, markup=False)

    def table(
        self,
        rows: Iterable[dict[str, Any]],
        columns: Sequence[tuple[str, str]],
        *,
        empty: str = "Nothing to show.",
    ) -> None:
        rows = list(rows)
        if not rows:
            self.info(empty)
            return
        from rich.table import Table

        table = Table(show_edge=False, box=None, pad_edge=False, header_style="bold")
        for _, title in columns:
            table.add_column(title, overflow="fold")
        for row in rows:
            table.add_row(*(_cell(row.get(key)) for key, _ in columns))
        self.out.print(table)

    def fields(self, pairs: Sequence[tuple[str, Any]]) -> None:
        width = max((len(k) for k, _ in pairs), default=0)
        for key, value in pairs:
            self.line(f"{key.ljust(width)}  {_cell(value)}")

    def fail(self, error: CliError) -> typing.NoReturn:
        if self.json:
            body = {"error": {"code": error.code, "message": error.message, "details": error.details}}
            sys.stderr.write(json.dumps(body, ensure_ascii=False, default=str) + "\n")
        else:
            self.err.print(f"Error: {error.message}", highlight=False, markup=False)
        raise typer.Exit(error.exit_code)


def _console(*, stderr: bool) -> Console:
    from rich.console import Console

    # NO_COLOR (no-color.org), when set and not empty: rich alone drops colours but still writes
    # bold and other escape codes on a terminal; no colour system writes none at all.
    plain = bool(os.environ.get("NO_COLOR"))
    return Console(stderr=stderr, soft_wrap=True, color_system=None if plain else "auto")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return str(value.get("name") or value.get("slug") or value.get("id") or "")
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    return str(value)


_JSON_ERRORS = "max_json_errors"


class MaxGroup(TyperGroup):
    """The root ``max`` group. With ``--json`` on the command line, usage errors (a missing
    argument, an unknown option or command, a bad value) are reported like every other error:
    ``{"error": {"code": "usage_error", …}}`` on stderr and exit 2, instead of click's text."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        wants_json = "--json" in args  # before parsing, which consumes ``args``
        try:
            ctx = super().make_context(info_name, args, parent, **extra)
        except UsageError as exc:
            if wants_json:
                _usage_error(exc)
            raise
        ctx.meta[_JSON_ERRORS] = wants_json
        return ctx

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:  # from a noun or a verb, parsed inside this call
            if ctx.meta.get(_JSON_ERRORS):
                _usage_error(exc)
            raise


def _usage_error(exc: UsageError) -> typing.NoReturn:
    usage = exc.ctx.get_usage() if exc.ctx is not None else None
    body = {"error": {"code": "usage_error", "message": exc.format_message(), "details": {"usage": usage}}}
    sys.stderr.write(json.dumps(body, ensure_ascii=False) + "\n")
    raise typer.Exit(EXIT_USAGE)


JsonOption = Annotated[
    bool, typer.Option("--json", help="Print stable JSON on stdout (errors as JSON on stderr).")
]
UrlOption = Annotated[
    str | None, typer.Option("--url", envvar="MAX_URL", help="Server URL.", show_envvar=True)
]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="MAX_TOKEN", help="API token.", show_envvar=True, show_default=False),
]


def command(
    app: typer.Typer, name: str | None = None, *, connects: bool = True, **kwargs: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Registers ``fn(cli, ...)`` as a command with ``--json`` (and ``--url``/``--token``).

    The wrapper turns :class:`CliError` and :class:`ApiError` into the house's messages and
    exit codes, so commands only say what they do.
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        hints = typing.get_type_hints(fn, include_extras=True)
        signature = inspect.signature(fn)
        params = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in list(signature.parameters.values())[1:]
        ]
        extra = [
            inspect.Parameter(
                "json_output", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=JsonOption
            )
        ]
        if connects:
            extra += [
                inspect.Parameter("url", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=UrlOption),
                inspect.Parameter(
                    "token", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=TokenOption
                ),
            ]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kw: Any) -> Any:
            json_output = kw.pop("json_output", False)
            url, token = (kw.pop("url", None), kw.pop("token", None)) if connects else (None, None)
            cli = Cli(json=json_output, url=url, token=token)
            try:
                return fn(cli, *args, **kw)
            except CliError as exc:
                cli.fail(exc)
            except ApiError as exc:
                cli.fail(
                    CliError(exc.message, exit_code=exit_code_for(exc), code=exc.code, details=exc.details)
                )
            finally:
                if cli._client is not None:
                    cli._client.close()

        wrapper.__signature__ = signature.replace(parameters=params + extra)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params + extra}
        del wrapper.__wrapped__  # typer must read the new signature, not the original
        app.command(name, **kwargs)(wrapper)
        return fn

    return decorate


def page_json(items: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return {key: items, "next_cursor": None}
