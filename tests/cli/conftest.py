"""CLI tests: typer's runner in-process, with a clean environment and home directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from max_cli.main import app as cli_app
from max_server.db import Database


class Max:
    """Runs ``max …`` and parses ``--json`` output."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.runner = CliRunner()

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return self.runner.invoke(
            cli_app, list(args), env={**self.env, **(env or {})}, catch_exceptions=False
        )

    def json(self, *args: str, env: dict[str, str] | None = None) -> Any:
        result = self(*args, "--json", env=env)
        assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
        return json.loads(result.stdout)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    for key in ("MAX_URL", "MAX_TOKEN", "MAX_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local/share"))
    monkeypatch.setenv("NO_COLOR", "1")
    return home


@pytest.fixture
def config_file(tmp_path: Path, db: Database) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{db.url}"\n[storage]\npath = "{tmp_path / "media"}"\n')
    return path


@pytest.fixture
def max_cli(home: Path) -> Max:
    return Max({"COLUMNS": "200"})
