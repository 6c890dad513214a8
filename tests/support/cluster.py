"""Several ``max server run`` processes on one PostgreSQL database, reached through a
:class:`~tests.support.tcpproxy.TcpProxy` (so a test can cut the database away), with media in
one S3 endpoint and WhatsApp pointed at the Graph API sandbox.

The processes use the real clock, their own log files (``Cluster.logs()``), and can be killed
with SIGKILL and restarted on the same port.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from tests.support.processes import ServerProcess
from tests.support.tcpproxy import TcpProxy

Sections = Mapping[str, Mapping[str, Any]]


def toml_text(sections: Sections) -> str:
    """A TOML document of flat sections (strings, numbers, booleans)."""
    lines: list[str] = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if isinstance(value, bool):
                rendered = "true" if value else "false"
            elif isinstance(value, int | float):
                rendered = str(value)
            else:
                rendered = json.dumps(str(value))  # a TOML basic string
            lines.append(f"{key} = {rendered}")
        lines.append("")
    return "\n".join(lines)


class Cluster:
    def __init__(self, root: Path, database_url: str, sections: Sections, size: int = 3) -> None:
        self.root = root
        self.home = root / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        parsed = make_url(database_url)
        self.proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
        self.direct_url = database_url
        self.sections = {name: dict(values) for name, values in sections.items()}
        self.config = root / "cluster.toml"
        self.size = size
        self.servers: list[ServerProcess] = []

    # Lifecycle -------------------------------------------------------------------------------
    def start(self) -> Cluster:
        self.proxy.start()
        database = dict(self.sections.get("database", {}))
        database["url"] = self.proxy.rewrite(self.direct_url)
        self.config.write_text(toml_text({**self.sections, "database": database}))
        self.servers = [ServerProcess(self.config, self.home) for _ in range(self.size)]
        for server in self.servers:  # in parallel: each takes a few seconds to import and start
            server.start(wait=False)
        for server in self.servers:
            server.wait_ready(timeout=60)
        return self

    def stop(self) -> None:
        for server in self.servers:
            if server.proc is not None:
                server.terminate()
        self.proxy.stop()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # One process -----------------------------------------------------------------------------
    def kill(self, index: int) -> None:
        """SIGKILL: no shutdown, no lease released, connections dropped mid-request."""
        self.servers[index].kill()

    def restart(self, index: int) -> ServerProcess:
        """A new process on the same port (its log continues in the same file)."""
        old = self.servers[index]
        fresh = ServerProcess(self.config, self.home, port=old.port)
        self.servers[index] = fresh
        return fresh.start(wait=False)

    def worker_name(self, index: int) -> str:
        """The name under which this process's job worker holds leases (``host:pid``)."""
        proc = self.servers[index].proc
        assert proc is not None
        return f"{socket.gethostname()}:{proc.pid}"

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers]

    def ready(self, index: int, timeout: float = 2.0) -> int | None:
        """The status of ``/readyz`` (None when the process does not answer)."""
        try:
            return httpx.get(self.servers[index].url + "/readyz", timeout=timeout).status_code
        except httpx.HTTPError:
            return None

    def wait_all_ready(self, timeout: float = 60.0) -> float:
        """Seconds until every process answered ``/readyz`` with 200."""
        started = time.monotonic()
        pending = set(range(len(self.servers)))
        while pending:
            pending = {i for i in pending if self.ready(i) != 200}
            if not pending:
                break
            if time.monotonic() - started > timeout:
                raise AssertionError(f"processes {sorted(pending)} not ready after {timeout}s")
            time.sleep(0.2)
        return time.monotonic() - started

    def logs(self) -> str:
        """Every process's log, including those of killed and restarted ones."""
        paths = sorted(self.root.glob("server-*.log"))
        return "\n".join(path.read_text(errors="replace") for path in paths)
