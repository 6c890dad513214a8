"""``max server run`` as operators use it: bad config, clean shutdown, structured logs."""

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from max_server.db import Database
from tests.support.processes import ServerProcess, clean_env, max_command


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def run_max(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        max_command(*args), env=clean_env(home, **env), capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ("[server]\nportt = 8000\n", "server.portt"),
        ('[server]\nport = "http"\n', "server.port"),
        ('[database]\nurl = "postgresql://nobody@127.0.0.1:1/max"\n', "cannot open database"),
        ('[server]\nenvironment = "production"\n', "server.secret_key"),
    ],
)
def test_bad_config_stops_with_one_line_and_exit_1(
    tmp_path: Path, home: Path, config: str, needle: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config + f'\n[storage]\npath = "{tmp_path}"\n' if "storage" not in config else config)
    result = run_max(home, "server", "run", "--config", str(path))
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]
    assert "Traceback" not in result.stderr
    assert "nobody@" not in result.stderr or "***" in result.stderr or ":1/" in result.stderr


def test_runs_stops_cleanly_and_ignores_client_variables(tmp_path: Path, home: Path, db: Database) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{db.url}"\nauto_migrate = true\n[storage]\npath = "{tmp_path}/media"\n'
    )
    server = ServerProcess(
        config,
        home,
        "--log-format",
        "json",
        env={"MAX_URL": "http://127.0.0.1:1", "MAX_TOKEN": "max_not_a_setting", "MAX_TEST_X": "1"},
    )
    server.start()
    try:
        secret = "max_" + "S" * 43
        assert httpx.get(server.url + "/readyz").json()["status"] == "ready"
        unauthorized = httpx.get(server.url + "/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
        assert unauthorized.status_code == 401
        httpx.get(server.url + f"/api/v1/events?token={secret}")
    finally:
        code = server.terminate()
    assert code == 0, server.log()
    log = server.log()
    lines = [line for line in log.splitlines() if line.strip()]
    assert lines
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any(e.get("msg", "").startswith("GET /readyz 200") for e in entries)
    assert any(
        "Shutting down" in e.get("msg", "") or "Finished server process" in e.get("msg", "") for e in entries
    )
    assert secret not in log
    assert "S" * 43 not in log


def test_several_worker_processes_on_postgres(tmp_path: Path, home: Path, db: Database) -> None:
    if not db.is_postgres:
        result = run_max(home, "server", "run", "--workers", "2", "--config", str(_config(tmp_path, db)))
        assert result.returncode == 1
        assert "needs PostgreSQL" in result.stderr
        return
    server = ServerProcess(_config(tmp_path, db), home, "--workers", "2")
    server.start()
    try:
        pids = {httpx.get(server.url + "/healthz").status_code for _ in range(10)}
        assert pids == {200}
    finally:
        code = server.terminate()
    assert code == 0, server.log()


def _config(tmp_path: Path, db: Database) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{db.url}"\n[storage]\npath = "{tmp_path}/media"\n')
    return path
