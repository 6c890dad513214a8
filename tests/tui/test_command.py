"""``max tui``: the command exists, and without a token it says how to get one (exit 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from max_cli.main import app as cli_app


@pytest.fixture
def clean_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("MAX_URL", "MAX_TOKEN", "MAX_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path


def test_max_tui_without_a_token_says_how_to_sign_in(clean_home: Path) -> None:
    result = CliRunner().invoke(cli_app, ["tui", "--json"])
    assert result.exit_code == 4
    assert json.loads(result.stderr)["error"]["code"] == "missing_token"
    listed = CliRunner().invoke(cli_app, ["--help"], env={"COLUMNS": "200"})
    assert " tui " in listed.stdout
