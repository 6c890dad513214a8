"""Database: types, constraints, pragmas and migrations on SQLite and PostgreSQL."""

import threading
import warnings
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.schema import CreateIndex
from sqlmodel import SQLModel, select

from max_server.db import Database
from max_server.models import Conversation, Customer, User
from tests.support import factories


def test_datetimes_come_back_aware_utc(db: Database) -> None:
    mexico = timezone(timedelta(hours=-6))
    seen = datetime(2026, 1, 3, 10, 0, tzinfo=mexico)
    with db.session() as session:
        user = User(name="A", email="a@example.com", last_seen_at=seen)
        session.add(user)
        session.commit()
        user_id = user.id
    with db.session() as session:
        loaded = session.get(User, user_id)
        assert loaded is not None
        assert loaded.last_seen_at is not None
        assert loaded.last_seen_at.tzinfo is not None
        assert loaded.last_seen_at.utcoffset() == timedelta(0)
        assert loaded.last_seen_at == datetime(2026, 1, 3, 16, 0, tzinfo=UTC)


def test_naive_datetimes_are_refused(db: Database) -> None:
    with db.session() as session:
        session.add(User(name="A", email="a@example.com", last_seen_at=datetime(2026, 1, 1)))
        with pytest.raises(StatementError, match="naive datetime"):
            session.commit()


def test_check_and_unique_constraints_hold(db: Database) -> None:
    with db.session() as session:
        session.add(User(name="A", email="a@example.com", role="superuser"))
        with pytest.raises(IntegrityError):
            session.commit()
    with db.session() as session:
        session.add(User(name="A", email="a@example.com"))
        session.commit()
        session.add(User(name="B", email="a@example.com"))
        with pytest.raises(IntegrityError):
            session.commit()


def test_foreign_keys_are_enforced(db: Database) -> None:
    with db.session() as session:
        session.add(Conversation(number=1, customer_id=999, channel_account_id=999))
        with pytest.raises(IntegrityError):
            session.commit()


def test_one_open_conversation_per_customer_and_account(db: Database) -> None:
    account = factories.channel_account(db)
    customer = factories.customer(db)
    factories.conversation(db, customer_row=customer, account=account)
    with pytest.raises(IntegrityError):
        factories.conversation(db, customer_row=customer, account=account)
    # Closed conversations do not count: close the first, then a new one may open.
    with db.session() as session:
        for row in session.exec(select(Conversation)):
            row.status = "closed"
            session.add(row)
        session.commit()
    factories.conversation(db, customer_row=customer, account=account)
    other = factories.channel_account(db, external_id="999")
    factories.conversation(db, customer_row=customer, account=other)


def test_concurrent_first_messages_open_one_conversation(db: Database) -> None:
    """Twenty writers race to open a conversation for one customer: the index lets one win."""
    account = factories.channel_account(db)
    customer = factories.customer(db)
    barrier = threading.Barrier(20)
    outcomes: list[str] = []

    def open_one(n: int) -> None:
        barrier.wait()
        try:
            with db.session() as session:
                session.add(
                    Conversation(number=1000 + n, customer_id=customer.id, channel_account_id=account.id)
                )  # type: ignore[arg-type]
                session.commit()
            outcomes.append("opened")
        except IntegrityError:
            outcomes.append("refused")

    threads = [threading.Thread(target=open_one, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("opened") == 1
    assert outcomes.count("refused") == 19
    with db.session(write=False) as session:
        assert (
            len(session.exec(select(Conversation).where(Conversation.customer_id == customer.id)).all()) == 1
        )


def test_sqlite_pragmas(tmp_path: object) -> None:
    db = Database(f"sqlite:///{tmp_path}/p.db")
    with db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    db.dispose()


def test_write_sessions_begin_immediate_on_sqlite(tmp_path: object) -> None:
    """A write session holds SQLite's write lock from BEGIN; a read session does not."""
    db = Database(f"sqlite:///{tmp_path}/w.db")
    SQLModel.metadata.create_all(db.engine, tables=[Customer.__table__])  # type: ignore[attr-defined]
    with db.session(write=True) as writer:
        writer.exec(select(Customer)).all()  # starts the transaction
        with db.session(write=False) as reader:
            assert reader.exec(select(Customer)).all() == []  # readers still read
        blocked = Database(f"sqlite:///{tmp_path}/w.db")
        with blocked.engine.connect() as raw:
            raw.exec_driver_sql("PRAGMA busy_timeout=50")
            with pytest.raises(Exception, match="locked"):
                raw.exec_driver_sql("BEGIN IMMEDIATE")
        blocked.dispose()
    db.dispose()


def test_migrations_match_the_models(db: Database) -> None:
    """The migrated schema is what the models declare (nothing forgotten in a migration)."""
    with db.engine.connect() as connection, warnings.catch_warnings():
        if db.is_sqlite:  # SQLite cannot reflect expression indexes: they are compared below
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
            warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based")
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []
    if db.is_sqlite:
        expression_indexes = [
            index
            for table in SQLModel.metadata.sorted_tables
            for index in table.indexes
            if any(not isinstance(e, Column) for e in index.expressions)
        ]
        assert expression_indexes, "no expression index to compare (then drop this branch)"
        with db.engine.connect() as connection:
            for index in expression_indexes:
                stored = connection.execute(
                    text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :n"),
                    {"n": index.name},
                ).scalar()
                declared = str(CreateIndex(index).compile(dialect=connection.dialect))
                assert " ".join(str(stored).split()) == " ".join(declared.split()), index.name


def test_migrations_run_twice_harmlessly(db: Database) -> None:
    from max_server import migrate

    before, after = migrate.upgrade(db)
    assert before == after == migrate.head_revision()
    assert migrate.is_current(db)
