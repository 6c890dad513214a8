"""Engine and sessions for SQLite (embedded default) and PostgreSQL (psycopg 3).

SQLite runs in WAL mode with foreign keys on and a busy timeout; write transactions start with
``BEGIN IMMEDIATE`` so two writers never deadlock upgrading a read lock, while reads use a plain
``BEGIN`` and run beside a writer. PostgreSQL URLs are normalised to ``postgresql+psycopg://``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlmodel import Session, create_engine

_BEGIN_OPTION = "max_begin"


def normalise_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def redact_url(url: str) -> str:
    """The URL with its password hidden, for logs and messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown without anything after the scheme
        return url.split(":", 1)[0] + "://…"


class Database:
    """One engine per process; sessions are short and synchronous."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = normalise_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(self.url, echo=echo)
        elif self.dialect == "postgresql":
            self.engine = create_engine(
                self.url,
                echo=echo,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                pool_recycle=1800,
                connect_args={"connect_timeout": 5, "application_name": "max"},
            )
        else:
            raise ValueError(f"unsupported database {self.dialect!r}: use sqlite or postgresql")
        self._write_engine = self.engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def session(self, *, write: bool = True) -> Session:
        """A new session. ``write=False`` reads without taking SQLite's write lock."""
        return Session(self._write_engine if write else self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self.session(write=write) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_engine(url: str, *, echo: bool) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        echo=echo,
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=20,
        max_overflow=20,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Python's sqlite3 opens transactions itself; we want to issue BEGIN ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())

    return engine


def dialect_insert(session: Session, table: Any) -> Any:
    """``INSERT`` that supports ``on_conflict_do_nothing``/``_update`` on both databases."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    return insert(table)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def upsert_statements(table: Any, build: Callable[[Any], Any]) -> dict[str, Any]:
    """``build(insert)`` once per dialect, for :func:`dialect_insert`'s users on hot paths:
    building a statement costs more than running it, so these are built at import and run with
    parameter dictionaries. Look one up with ``statements[session.get_bind().dialect.name]``."""
    return {"postgresql": build(postgresql.insert(table)), "sqlite": build(sqlite.insert(table))}
