"""``max doctor`` against a running demo (all green; then a read-only storage path, a wrong token
and a wrong verify token, each red with its fix) and against plain configs on both databases."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from max_cli.main import app as cli_app
from max_server.db import Database
from tests.demo.process import DemoProcess
from tests.support.databases import (
    create_postgres_database,
    drop_postgres_database,
    require_postgres,
    unique_name,
)
from tests.support.processes import max_command

NAMES = ["config", "database", "migrations", "storage", "whatsapp", "webhook"]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoProcess]:
    running = DemoProcess(tmp_path, "--data", str(tmp_path / "data"), "--pace", "5").start()
    yield running
    running.kill()


def doctor(demo: DemoProcess, *prefix: str, **env: str) -> tuple[int, dict[str, Any]]:
    """``max doctor --json`` on the demo's config in a child process (``prefix`` wraps it)."""
    command = [*prefix, *max_command("doctor", "--json", "--config", demo.values["MAX_CONFIG"])]
    result = subprocess.run(command, env={**demo.env, **env}, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in result.stderr and result.stdout, (command, result.stderr)
    return result.returncode, json.loads(result.stdout)


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert [c["name"] for c in report["checks"]] == NAMES
    return {c["name"]: c for c in report["checks"]}


def read_only(media: Path) -> tuple[list[str], str]:
    """A command prefix under which ``media`` cannot be written, and how.

    chmod does not stop root (tests run as root here), so as root the doctor runs in a private
    mount namespace where ``media`` is bind-mounted read-only: the kernel refuses every write with
    EROFS, as on a read-only volume, and nothing outside that one process is affected. Without
    the privilege for that (root in a container without CAP_SYS_ADMIN), the storage path is made
    a regular file instead: still a path the server cannot write under, named by the same check.
    """
    media.mkdir(exist_ok=True)  # the server makes it on its first file; here it exists, read-only
    if os.geteuid() != 0:
        media.chmod(0o555)
        return [], "chmod 0555"
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "--mount", "true"], capture_output=True).returncode == 0:
        script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'
        return [
            unshare,
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            str(media),
        ], "ro bind mount"
    blocker = media.parent / "media-is-a-file"
    blocker.write_text("not a directory")
    return ["env", f"MAX_STORAGE__PATH={blocker}"], "a file for a directory"


def test_a_healthy_demo_is_all_green_and_each_broken_part_is_red_with_its_fix(demo: DemoProcess) -> None:
    status, report = doctor(demo)
    assert status == 0, report
    checks = by_name(report)
    assert report["ok"] is True
    assert all(c["ok"] and not c["skipped"] and c["fix"] is None for c in checks.values()), report
    assert "MAX Sandbox" in checks["whatsapp"]["detail"]  # a real Graph API answer, from the sandbox
    assert "echoes" in checks["webhook"]["detail"]

    media = Path(demo.values["MAX_CONFIG"]).parent / "media"
    prefix, how = read_only(media)
    status, report = doctor(demo, *prefix)
    checks = by_name(report)
    assert status == 1 and report["ok"] is False, (how, report)
    storage = checks["storage"]
    assert storage["ok"] is False and "cannot write a probe object" in storage["detail"], (how, storage)
    assert "writ" in storage["fix"] and "storage.path" in storage["fix"], storage
    assert [n for n, c in checks.items() if not c["ok"]] == ["storage"], (how, report)
    assert not list(media.glob("doctor-probe-*"))  # nothing left behind either way
    media.chmod(0o755)

    # A token Meta (the sandbox) refuses, and a verify token the running server does not have.
    status, report = doctor(
        demo, MAX_WHATSAPP__ACCESS_TOKEN="expired-token", MAX_WHATSAPP__VERIFY_TOKEN="other"
    )
    checks = by_name(report)
    assert status == 1
    assert checks["whatsapp"]["ok"] is False and "401" in checks["whatsapp"]["detail"]
    assert "access_token" in checks["whatsapp"]["fix"]
    assert checks["webhook"]["ok"] is False and "403" in checks["webhook"]["detail"]
    assert "verify_token" in checks["webhook"]["fix"]
    assert [n for n, c in checks.items() if not c["ok"]] == ["whatsapp", "webhook"]

    assert demo.interrupt() == 0, demo.stderr()
    assert (media.parent / "max.db").exists()  # --data keeps the data


# Without a demo: the database lines on both backends ---------------------------------------------
@pytest.fixture
def run_doctor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    for key in [k for k in os.environ if k.startswith("MAX_") and "__" in k] + ["MAX_CONFIG"]:
        monkeypatch.delenv(key, raising=False)

    def run(database: str, *extra: str) -> tuple[int, dict[str, dict[str, Any]]]:
        config = tmp_path / "config.toml"
        lines = [f'[database]\nurl = "{database}"', *extra, f'[storage]\npath = "{tmp_path / "media"}"']
        config.write_text("\n".join(lines) + "\n")
        result = CliRunner().invoke(
            cli_app, ["doctor", "--json", "--config", str(config)], catch_exceptions=False
        )
        return result.exit_code, by_name(json.loads(result.stdout))

    return run


def test_doctor_on_a_migrated_database_without_whatsapp(db: Database, run_doctor: Any) -> None:
    status, checks = run_doctor(db.url)
    assert status == 0, checks
    assert checks["database"]["ok"] and checks["migrations"]["ok"] and checks["storage"]["ok"]
    assert "current" in checks["migrations"]["detail"]
    for name in ("whatsapp", "webhook"):
        assert checks[name]["skipped"] and "not configured" in checks[name]["detail"]


@pytest.fixture
def empty_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """An existing database without MAX's schema."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.db'}"
        database = Database(url)
        with database.engine.connect() as connection:  # creates the (empty) file
            connection.exec_driver_sql("SELECT 1")
        database.dispose()
        yield url
        return
    base = require_postgres()
    name = unique_name("doctor")
    yield create_postgres_database(base, name)
    drop_postgres_database(base, name)


def test_pending_migrations_say_to_run_db_upgrade(empty_database: str, run_doctor: Any) -> None:
    status, checks = run_doctor(empty_database, "auto_migrate = false")
    assert status == 1
    assert checks["database"]["ok"]
    assert checks["migrations"]["ok"] is False and "max db upgrade" in checks["migrations"]["fix"]


def test_an_unreachable_database_skips_the_migrations_line(run_doctor: Any) -> None:
    status, checks = run_doctor("postgresql://max@127.0.0.1:1/max")
    assert status == 1
    assert checks["database"]["ok"] is False and "PostgreSQL" in checks["database"]["fix"]
    assert checks["migrations"]["skipped"] and "unreachable" in checks["migrations"]["detail"]
