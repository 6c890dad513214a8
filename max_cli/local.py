"""Commands that act on the server's own database (bootstrap, migrations, ``server run``).

Server code is imported here, lazily, inside functions: the rest of the CLI talks HTTP only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from max_cli.output import EXIT_AUTH, EXIT_FAILURE, CliError

if TYPE_CHECKING:
    from max_server.db import Database
    from max_server.settings import Settings


def load(config: str | None) -> Settings:
    from max_server.settings import ConfigError, load_settings

    try:
        return load_settings(config)
    except ConfigError as exc:
        raise CliError(str(exc), code="config_error") from None


def open_database(settings: Settings) -> Database:
    """The configured database, checked reachable (one clear line if not)."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from max_server.db import Database, redact_url

    try:
        db = Database(settings.database_url, pool_size=2)
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, ValueError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
        raise CliError(
            f"cannot open database {redact_url(settings.database_url)}: {reason}",
            code="database_unavailable",
        ) from None
    return db


def ensure_schema(db: Database, settings: Settings) -> None:
    from max_server import migrate

    if migrate.is_current(db):
        return
    if settings.auto_migrate:
        migrate.upgrade(db)
        return
    raise CliError(
        "the database schema is not current: run `max db upgrade` (or set database.auto_migrate = true)",
        code="migrations_pending",
    )


def bootstrap_user(config: str | None, name: str, email: str, role: str, capacity: int) -> dict[str, Any]:
    """Creates the first user directly in an empty database; refuses once users exist."""
    from pydantic import ValidationError

    from max_server.errors import Conflict
    from max_server.schemas import UserCreate
    from max_server.services import present, users

    settings = load(config)
    db = open_database(settings)
    try:
        ensure_schema(db, settings)
        try:
            data = UserCreate(name=name, email=email, role=role, capacity=capacity)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise CliError(
                f"{first['loc'][0]}: {first['msg']}", code="validation_error", exit_code=2
            ) from None
        with db.session() as session:
            try:
                user, token = users.bootstrap_first_user(session, data)
            except Conflict:
                raise CliError(
                    "no API token, and this database already has users: run `max login` or pass --token",
                    exit_code=EXIT_AUTH,
                    code="missing_token",
                ) from None
            return {"user": present.user(user).model_dump(mode="json"), "token": token}
    finally:
        db.dispose()


def upgrade(config: str | None) -> dict[str, Any]:
    from max_server import migrate
    from max_server.db import redact_url

    settings = load(config)
    db = open_database(settings)
    try:
        before, after = migrate.upgrade(db)
    except Exception as exc:
        raise CliError(f"migration failed: {exc}", exit_code=EXIT_FAILURE, code="migration_failed") from None
    finally:
        db.dispose()
    return {
        "database": redact_url(settings.database_url),
        "from": before,
        "to": after,
        "changed": before != after,
    }


def status(config: str | None) -> dict[str, Any]:
    from max_server import migrate
    from max_server.db import redact_url

    settings = load(config)
    db = open_database(settings)
    try:
        current, head = migrate.current_revision(db), migrate.head_revision()
    finally:
        db.dispose()
    return {
        "database": redact_url(settings.database_url),
        "current": current,
        "head": head,
        "up_to_date": current == head,
    }
