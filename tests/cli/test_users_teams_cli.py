"""The CLI's conventions and its user, token and team commands against a live server."""

import json
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from max_cli.connection import login_file
from max_cli.output import CliError
from max_server import migrate
from max_server.db import Database
from tests.cli.conftest import Max
from tests.support.live import LiveServer
from tests.support.migrations import database_at


def test_bootstrap_then_everything_goes_through_the_api(
    max_cli: Max, config_file: Path, live: LiveServer
) -> None:
    env = {"MAX_CONFIG": str(config_file)}
    first = max_cli.json(
        "users", "create", "Ana Admin", "--email", "ana@example.com", "--role", "admin", env=env
    )
    assert first["user"]["role"] == "admin"
    token = first["token"]
    assert token.startswith("max_")

    # A second bootstrap without a token is refused (exit 4): the database has users now.
    again = max_cli("users", "create", "Eve", "--email", "eve@example.com", "--json", env=env)
    assert again.exit_code == 4
    assert json.loads(again.stderr)["error"]["code"] == "missing_token"
    assert again.stdout == ""

    api = {"MAX_URL": live.url, "MAX_TOKEN": token}
    agent = max_cli.json("users", "create", "Beto Agent", "--email", "beto@example.com", env=api)
    assert agent["user"]["role"] == "agent"
    team = max_cli.json("teams", "create", "support", "--timezone", "America/Mexico_City", env=api)
    assert team["slug"] == "support"
    shown = max_cli.json(
        "teams", "add-member", "support", "beto@example.com", "--role", "supervisor", env=api
    )
    assert [(m["email"], m["role"]) for m in shown["members"]] == [("beto@example.com", "supervisor")]
    listed = max_cli.json("teams", "list", env=api)
    assert [t["slug"] for t in listed["teams"]] == ["support"]
    users = max_cli.json("users", "list", env=api)
    assert {u["email"] for u in users["users"]} == {"ana@example.com", "beto@example.com"}
    assert (
        max_cli.json("users", "set-role", "beto@example.com", "supervisor", env=api)["role"] == "supervisor"
    )
    removed = max_cli.json("teams", "remove-member", "support", "beto@example.com", env=api)
    assert removed["members"] == []

    made = max_cli.json("tokens", "create", "beto@example.com", "--name", "laptop", env=api)
    assert made["token"].startswith("max_")
    tokens = max_cli.json("tokens", "list", "beto@example.com", env=api)["tokens"]
    assert {t["name"] for t in tokens} == {"default", "laptop"}
    assert all("token" not in t and "token_hash" not in t for t in tokens)
    revoked = max_cli.json("tokens", "revoke", made["api_token"]["id"], env=api)
    assert revoked["revoked_at"]
    assert max_cli.json("users", "deactivate", "beto@example.com", env=api)["is_active"] is False


def test_two_concurrent_bootstraps_create_one_first_user(
    config_file: Path, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from max_cli import local
    from max_server.services import users

    real_count = users.count_users

    def slow_count(session: Any) -> int:
        found = real_count(session)
        time.sleep(0.5)  # widens the window between counting and inserting, where a race lives
        return found

    monkeypatch.setattr(users, "count_users", slow_count)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def bootstrap(n: int) -> None:
        start.wait()
        try:
            local.bootstrap_user(str(config_file), f"Admin {n}", f"admin{n}@example.com", "admin", 5)
            outcomes.append("created")
        except CliError as exc:
            outcomes.append(f"{exc.code}:{exc.exit_code}")

    threads = [threading.Thread(target=bootstrap, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["created", "missing_token:4"]
    with db.session(write=False) as session:
        assert real_count(session) == 1


def test_exit_codes_and_errors(max_cli: Max, config_file: Path, live: LiveServer) -> None:
    token = max_cli.json(
        "users",
        "create",
        "A",
        "--email",
        "a@example.com",
        "--role",
        "admin",
        env={"MAX_CONFIG": str(config_file)},
    )["token"]
    api = {"MAX_URL": live.url, "MAX_TOKEN": token}
    missing = max_cli("teams", "show", "nope", "--json", env=api)
    assert missing.exit_code == 3
    assert json.loads(missing.stderr)["error"]["code"] == "team_not_found"
    human = max_cli("teams", "show", "nope", env=api)
    assert human.exit_code == 3
    assert human.stderr.startswith("Error: team nope not found")
    bad_token = max_cli("teams", "list", "--json", env={**api, "MAX_TOKEN": "max_" + "z" * 43})
    assert bad_token.exit_code == 4
    usage = max_cli("teams", "create", env=api)
    assert usage.exit_code == 2
    invalid = max_cli("teams", "create", "Not A Slug", "--json", env=api)
    assert invalid.exit_code == 2
    assert json.loads(invalid.stderr)["error"]["code"] == "validation_error"
    unreachable = max_cli("teams", "list", "--json", env={**api, "MAX_URL": "http://127.0.0.1:9"})
    assert unreachable.exit_code == 1
    assert json.loads(unreachable.stderr)["error"]["code"] == "unreachable"
    no_token = max_cli("teams", "list", "--url", live.url)
    assert no_token.exit_code == 4


def test_human_output_is_a_table(max_cli: Max, config_file: Path, live: LiveServer) -> None:
    token = max_cli.json(
        "users",
        "create",
        "A",
        "--email",
        "a@example.com",
        "--role",
        "admin",
        env={"MAX_CONFIG": str(config_file)},
    )["token"]
    api = {"MAX_URL": live.url, "MAX_TOKEN": token}
    max_cli("teams", "create", "sales", env=api)
    terminal = {**api, "FORCE_COLOR": "1", "TERM": "xterm-256color"}  # as if on a colour terminal
    result = max_cli("teams", "list", env=terminal)  # NO_COLOR=1 comes from the fixture
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "SLUG", "NAME", "TIMEZONE", "MEMBERS"]
    assert lines[1].split() == ["1", "sales", "Sales", "UTC", "0"]
    assert "\x1b[" not in result.stdout  # NO_COLOR: no escape codes at all, not even bold
    styled = max_cli("teams", "list", env={**terminal, "NO_COLOR": ""})  # empty: not set (no-color.org)
    assert "\x1b[" in styled.stdout  # what NO_COLOR took away


def test_login_stores_the_connection_privately(max_cli: Max, config_file: Path, live: LiveServer) -> None:
    token = max_cli.json(
        "users",
        "create",
        "A",
        "--email",
        "a@example.com",
        "--role",
        "admin",
        env={"MAX_CONFIG": str(config_file)},
    )["token"]
    wrong = max_cli("login", "--url", live.url, "--token", "max_" + "q" * 43, "--json")
    assert wrong.exit_code == 4
    assert not login_file().exists()
    result = max_cli.json("login", "--url", live.url, "--token", token)
    assert result["user"]["email"] == "a@example.com"
    path = login_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"url": live.url, "token": token}
    # Later commands need neither flags nor environment.
    assert max_cli.json("teams", "list") == {"teams": [], "next_cursor": None}
    assert max_cli.json("logout")["removed"] is True
    assert max_cli("teams", "list").exit_code == 4


def test_db_upgrade_and_status(max_cli: Max, tmp_path: Path, backend: str) -> None:
    with database_at(backend, tmp_path, None) as fresh:
        config = tmp_path / "fresh.toml"
        config.write_text(f'[database]\nurl = "{fresh.url}"\n')
        status = max_cli.json("db", "status", "--config", str(config))
        assert (status["current"], status["up_to_date"]) == (None, False)
        assert status["head"] == migrate.head_revision()
        upgraded = max_cli.json("db", "upgrade", "--config", str(config))
        assert (upgraded["from"], upgraded["to"], upgraded["changed"]) == (
            None,
            migrate.head_revision(),
            True,
        )
        assert max_cli.json("db", "upgrade", "--config", str(config))["changed"] is False
        assert max_cli.json("db", "status", "--config", str(config))["up_to_date"] is True
        assert migrate.is_current(fresh)
