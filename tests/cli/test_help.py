"""Every command explains itself with an example, and the shell can complete them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from max_cli.main import app
from max_server import __version__


def leaf_commands() -> list[tuple[str, Any]]:
    root = typer.main.get_command(app)
    found: list[tuple[str, Any]] = []

    def walk(command: Any, path: str) -> None:
        if hasattr(command, "commands"):  # a group (typer ships its own click)
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}")
        else:
            found.append((path, command))

    walk(root, "max")
    return found


def test_every_command_has_an_example_and_json() -> None:
    commands = leaf_commands()
    assert len(commands) > 60
    missing = [path for path, command in commands if "Example: max " not in (command.help or "")]
    assert missing == [], f"commands without an `Example: max …` line in their help: {missing}"
    no_json = [path for path, command in commands if not any("--json" in p.opts for p in command.params)]
    assert no_json == [], f"commands without --json: {no_json}"


def test_version_prints_json_too() -> None:
    runner = CliRunner()
    assert json.loads(runner.invoke(app, ["version", "--json"]).stdout) == {"version": __version__}
    assert runner.invoke(app, ["version"]).stdout == f"{__version__}\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["teams", "create", "--json"], "Missing argument 'slug'."),
        (["teams", "list", "--json", "--bogus"], "No such option: --bogus"),
        (["conversations", "--json"], "No such option: --json"),
        (["nouns", "--json"], "No such command 'nouns'."),
        (["users", "create", "Ana", "--email", "a@example.com", "--role", "king", "--json"], "'king'"),
        (["jobs", "list", "--limit", "many", "--json"], "Invalid value for '--limit'"),
    ],
)
def test_usage_errors_with_json_are_json_on_stderr_with_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "usage_error"
    assert message in error["message"]
    assert error["details"]["usage"].startswith("Usage: ")


def test_usage_errors_without_json_stay_text_for_people() -> None:
    result = CliRunner().invoke(app, ["teams", "create"])
    assert result.exit_code == 2
    assert "Usage:" in result.stderr and "Missing argument" in result.stderr
    assert not result.stderr.lstrip().startswith("{")


def test_the_installed_entry_point_reports_usage_errors_as_json() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "max_cli", "teams", "create", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert json.loads(result.stderr)["error"]["code"] == "usage_error"


def test_shell_completion_is_available() -> None:
    env = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "max_cli", "--show-completion", "bash"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "complete" in result.stdout and "max" in result.stdout
