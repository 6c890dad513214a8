"""Test databases: a migrated SQLite file and a migrated PostgreSQL database per test worker.

PostgreSQL comes from ``MAX_TEST_DATABASE_URL`` (any database on the server; we create our own
beside it). Without it the PostgreSQL variants skip, unless ``MAX_REQUIRE_POSTGRES=1`` says a
skip is a failure (CI sets it).
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from max_server import migrate
from max_server.db import Database, normalise_url

BACKENDS = ["sqlite", "postgres"]


def postgres_base_url() -> str | None:
    url = os.environ.get("MAX_TEST_DATABASE_URL")
    if url:
        return normalise_url(url)
    if os.environ.get("MAX_REQUIRE_POSTGRES") == "1":
        pytest.fail("MAX_REQUIRE_POSTGRES=1 but MAX_TEST_DATABASE_URL is not set")
    return None


def require_postgres() -> str:
    url = postgres_base_url()
    if url is None:
        pytest.skip("PostgreSQL variant: set MAX_TEST_DATABASE_URL to run it")
    return url


def create_postgres_database(base_url: str, name: str) -> str:
    """Creates (or recreates) database ``name`` on the server of ``base_url``; returns its URL."""
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(base_url: str, name: str) -> None:
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def unique_name(prefix: str) -> str:
    base = make_url(postgres_base_url() or "postgresql:///max").database or "max"
    return f"{base}_{prefix}_{uuid.uuid4().hex[:8]}"


class Template:
    """A migrated database for one backend, reset cheaply between tests."""

    def __init__(self, backend: str, workdir: Path, worker: str) -> None:
        self.backend = backend
        self.workdir = workdir
        self.worker = worker
        self.url: str | None = None
        self.pg_name: str | None = None
        self.tables: list[str] = []

    def prepare(self) -> None:
        if self.url is not None:
            return
        if self.backend == "sqlite":
            path = self.workdir / f"template-{self.worker}.db"
            db = Database(f"sqlite:///{path}")
        else:
            base = require_postgres()
            # Unique per test process, so several test runs can share one server.
            self.pg_name = f"{make_url(base).database}_{self.worker}_{os.getpid()}"
            db = Database(create_postgres_database(base, self.pg_name))
        migrate.upgrade(db)
        from sqlmodel import SQLModel

        self.tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
        self.url = db.url
        db.dispose()

    def fresh(self, tmp_path: Path) -> Database:
        """A clean migrated database for one test."""
        self.prepare()
        assert self.url is not None
        if self.backend == "sqlite":
            source = make_url(self.url).database
            assert source is not None
            target = tmp_path / "max.db"
            shutil.copyfile(source, target)
            return Database(f"sqlite:///{target}")
        db = Database(self.url, pool_size=20)
        with db.engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {', '.join(self.tables)} RESTART IDENTITY CASCADE"))
        return db

    def close(self) -> None:
        base = postgres_base_url()
        if self.pg_name and base:
            drop_postgres_database(base, self.pg_name)
