"""Column types and helpers shared by every table.

* Ids are 64-bit integers (``INTEGER PRIMARY KEY`` on SQLite so it aliases the rowid); the API
  shows them as strings.
* Datetimes are stored as UTC and always come back timezone-aware, on both databases.
* JSON is JSONB on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

from max_server import clock

# Deterministic constraint names, so migrations can find them on both databases.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer(), "sqlite")
JsonType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on SQLite (stored naive UTC) and PostgreSQL (timestamptz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: MAX stores only timezone-aware times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw SQL on SQLite can hand back text
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def id_field() -> Any:
    return Field(default=None, primary_key=True, sa_type=BigId)


def fk(target: str, *, nullable: bool = False, ondelete: str = "CASCADE", index: bool = True) -> Any:
    """A foreign key column to ``target`` (``"table.id"``)."""
    kwargs: dict[str, Any] = {
        "foreign_key": target,
        "sa_type": BigInteger,
        "ondelete": ondelete,
        "index": index,
    }
    if nullable:
        return Field(default=None, nullable=True, **kwargs)
    return Field(nullable=False, **kwargs)


def created_at_field() -> Any:
    return Field(default_factory=clock.now, sa_type=UTCDateTime, nullable=False)


def time_field(*, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=True, index=index)


def json_field(default_factory: Any = dict) -> Any:
    return Field(default_factory=default_factory, sa_type=JsonType, nullable=False)


def utcnow() -> datetime:
    return clock.now()
