"""Every command explains itself with an example, and the shell can complete them."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import typer

from max_cli.main import app


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
    no_json = [
        path
        for path, command in commands
        if path != "max version" and not any("--json" in p.opts for p in command.params)
    ]
    assert no_json == [], f"commands without --json: {no_json}"


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
