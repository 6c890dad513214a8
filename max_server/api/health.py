"""Liveness and readiness for load balancers and orchestrators (public, reveal nothing)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from max_server import __version__, migrate
from max_server.api.deps import DbDep
from max_server.api.errors import error_response
from max_server.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is alive and serving requests."""
    return Health(status="ok", version=__version__)


@router.get("/readyz", response_model=Health, responses={503: {"description": "Not ready"}})
def readyz(db: DbDep) -> Health | JSONResponse:
    """The database answers and its schema is current."""
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = migrate.is_current(db)
    except Exception as exc:  # any failure to reach the database means "not ready"
        return error_response(503, "database_unavailable", f"database unreachable ({type(exc).__name__})")
    if not current:
        return error_response(
            503, "migrations_pending", "the database schema is not current: run `max db upgrade`"
        )
    return Health(status="ready", version=__version__, checks={"database": "ok", "migrations": "current"})
