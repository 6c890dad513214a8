"""Databases at a chosen schema revision (empty, or one migration behind the head), on SQLite
or PostgreSQL, for tests of what happens when migrations are pending."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic.script import ScriptDirectory

from max_server import migrate
from max_server.db import Database
from tests.support.databases import (
    create_postgres_database,
    drop_postgres_database,
    require_postgres,
    unique_name,
)


def one_behind_head() -> str:
    """The revision just before the (single) head."""
    script = ScriptDirectory(str(migrate.MIGRATIONS))
    [head] = script.get_heads()
    previous = script.get_revision(head).down_revision
    assert isinstance(previous, str), f"the head {head} has no single predecessor: {previous!r}"
    return previous


@contextmanager
def database_at(backend: str, tmp_path: Path, revision: str | None) -> Iterator[Database]:
    """A fresh database of ``backend`` migrated up to ``revision`` (None: left empty)."""
    base, name = None, None
    if backend == "sqlite":
        path = tmp_path / f"at-{revision or 'empty'}.db"
        db = Database(f"sqlite:///{path}")
    else:
        base, name = require_postgres(), unique_name("at")
        db = Database(create_postgres_database(base, name), pool_size=2)
    try:
        if revision is not None:
            migrate.upgrade(db, revision)
        yield db
    finally:
        db.dispose()
        if base and name:
            drop_postgres_database(base, name)
