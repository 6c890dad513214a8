"""The ``max`` command: ``max <noun> <verb>``; see ``max --help``.

Every module of ``max_cli.commands`` is a noun: it defines ``app`` (a Typer group) and ``NAME``,
or ``register(app)`` for top-level commands such as ``max login``.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

from max_cli import commands
from max_cli.output import Cli, MaxGroup, command

app = typer.Typer(
    name="max",
    cls=MaxGroup,
    help="MAX: customer service on WhatsApp and your Chat App. Every command takes --json.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

for _module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
    _loaded = importlib.import_module(f"{commands.__name__}.{_module.name}")
    if hasattr(_loaded, "register"):
        _loaded.register(app)
    elif hasattr(_loaded, "app"):
        app.add_typer(_loaded.app, name=getattr(_loaded, "NAME", _module.name.replace("_", "-")))


@command(app, "version", connects=False)
def version(cli: Cli) -> None:
    """Print the version.

    Example: max version --json
    """
    from max_server import __version__

    cli.emit({"version": __version__}, lambda: cli.line(__version__))


def run() -> None:
    app()
