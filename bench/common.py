"""Shared bench plumbing: a fresh PostgreSQL (or SQLite) database, timing, and the output format
every bench prints: a table for people, or with ``--json`` a JSON list of
``{"figure", "target", "measured", "unit", "pass"}``."""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Figure:
    figure: str
    target: str
    measured: float
    unit: str
    passed: bool

    def row(self) -> dict[str, object]:
        data = asdict(self)
        data["pass"] = data.pop("passed")
        data["measured"] = round(self.measured, 3)
        return data


def report(figures: list[Figure], as_json: bool) -> None:
    if as_json:
        print(json.dumps([f.row() for f in figures]))
        return
    width = max(len(f.figure) for f in figures)
    print(f"{'figure'.ljust(width)}  {'target':>14}  {'measured':>12}  result")
    for f in figures:
        measured = f"{f.measured:,.2f} {f.unit}"
        print(f"{f.figure.ljust(width)}  {f.target:>14}  {measured:>12}  {'pass' if f.passed else 'FAIL'}")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)


@contextmanager
def fresh_database(kind: str = "postgres") -> Iterator[str]:
    """A migrated, empty database URL; dropped afterwards. PostgreSQL comes from
    ``MAX_BENCH_DATABASE_URL`` (any database on the server we may create databases beside)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from max_server import migrate
    from max_server.db import Database, normalise_url

    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            db = Database(url)
            migrate.upgrade(db)
            db.dispose()
            yield url
        return
    base = normalise_url(
        os.environ.get("MAX_BENCH_DATABASE_URL") or os.environ.get("MAX_TEST_DATABASE_URL") or DEFAULT_PG
    )
    name = f"max_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        db = Database(url)
        migrate.upgrade(db)
        db.dispose()
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _stat_fields(pid: str) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone meanwhile
        return None
    return raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses


def cpu_seconds(session_id: int | None = None, database: str | None = None) -> float:
    """User + system CPU (s) of the live processes of a session (the server started with
    ``start_new_session``: every uvicorn worker is in it), or of PostgreSQL's backends serving
    ``database`` (when it runs on this machine). Linux only; 0 elsewhere."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else ():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry.name)
        if fields is None:
            continue
        if session_id is not None:
            if int(fields[3]) != session_id:  # fields[3] is the session id (stat field 6)
                continue
        else:
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if not title.startswith("postgres:") or f" {database} " not in title:
                continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / tick


def online_team(session: Any, agents: int) -> tuple[Any, list[Any]]:
    """A team "support" of ``agents`` online agents with room for any number of conversations,
    added in ``session`` (flushed, not committed): the team and its users."""
    from datetime import UTC, datetime

    from max_server.access import Actor
    from max_server.models import TeamMember, User
    from max_server.schemas import TeamCreate
    from max_server.services import teams

    now = datetime.now(UTC)
    team = teams.create_team(session, Actor.system("bench"), TeamCreate(slug="support"))
    users = [
        User(
            name=f"Agent {n}",
            email=f"a{n}@bench.example",
            capacity=1_000_000,
            presence="online",
            last_seen_at=now,
        )
        for n in range(agents)
    ]
    session.add_all(users)
    session.flush()
    session.add_all(TeamMember(team_id=team.id, user_id=user.id) for user in users)
    session.flush()
    return team, users
