"""``max server run`` as operators use it: bad config, clean shutdown, structured logs."""

import contextlib
import json
import os
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from max_server import migrate
from max_server.db import Database
from tests.support.migrations import database_at, one_behind_head
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


def test_pending_migrations_stop_postgres_and_are_applied_on_sqlite(
    tmp_path: Path, home: Path, backend: str
) -> None:
    """``database.auto_migrate`` unset: PostgreSQL (several processes, a deploy step) refuses to
    serve an outdated schema; the embedded SQLite migrates itself."""
    behind = one_behind_head()
    with database_at(backend, tmp_path, behind) as db:
        config = _config(tmp_path, db)
        if db.is_postgres:
            result = run_max(home, "server", "run", "--config", str(config))
            assert result.returncode == 1, result.stderr
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            assert len(lines) == 1, result.stderr
            assert "schema is not current" in lines[0] and "max db upgrade" in lines[0]
            assert migrate.current_revision(db) == behind  # nothing was applied
            return
        server = ServerProcess(config, home)
        server.start()
        try:
            assert httpx.get(server.url + "/readyz").json()["status"] == "ready"
        finally:
            assert server.terminate() == 0, server.log()
        assert migrate.is_current(db)


def test_several_worker_processes_on_postgres(tmp_path: Path, home: Path, db: Database) -> None:
    if not db.is_postgres:
        result = run_max(home, "server", "run", "--workers", "2", "--config", str(_config(tmp_path, db)))
        assert result.returncode == 1
        assert "needs PostgreSQL" in result.stderr
        return
    server = ServerProcess(_config(tmp_path, db), home, "--workers", "2")
    server.start()
    clients: list[socket.socket] = []
    try:
        assert server.proc is not None
        workers = _listening_children(server.proc.pid, server.port)
        assert len(workers) == 2, f"expected two worker processes, found {workers}"
        served: dict[int, int] = {}
        # Each request on its own connection, kept open: the OS says which process accepted it.
        while len(served) < 2 and len(clients) < 200:
            client = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            clients.append(client)
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: max\r\n\r\n")
            assert client.recv(4096).startswith(b"HTTP/1.1 200 "), "a worker did not answer"
            served = _connections_by_process(workers, server.port)
        assert set(served) == workers, f"requests were served by {served}, workers are {workers}"
    finally:
        for client in clients:
            client.close()
        code = server.terminate()
    assert code == 0, server.log()


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    return inodes


def _tcp_sockets(port: int) -> list[tuple[str, str]]:
    """(state, inode) of IPv4 TCP sockets whose local port is ``port`` (from /proc/net/tcp)."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port:
            found.append((fields[3], fields[9]))
    return found


def _listening_children(parent: int, port: int) -> set[int]:
    """The children of ``parent`` that hold the listening socket (uvicorn's workers)."""
    listening = {inode for state, inode in _tcp_sockets(port) if state == "0A"}
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent and _socket_inodes(int(stat.parent.name)) & listening:
                children.add(int(stat.parent.name))
    return children


def _connections_by_process(pids: set[int], port: int) -> dict[int, int]:
    """How many established connections to ``port`` each process holds."""
    established = {inode for state, inode in _tcp_sockets(port) if state == "01"}
    counts = {pid: len(_socket_inodes(pid) & established) for pid in pids}
    return {pid: n for pid, n in counts.items() if n}


def _config(tmp_path: Path, db: Database) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{db.url}"\n[storage]\npath = "{tmp_path}/media"\n')
    return path
