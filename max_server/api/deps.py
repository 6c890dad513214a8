"""Request dependencies: the database session, the caller, and role guards.

Every route outside ``public.PUBLIC_ROUTES`` takes one of the role-guarded actors below
(``AgentActor``, ``SupervisorActor``, ``AdminActor``); a test walks the app's routes to hold us to
that. Visibility of conversations and customers is applied with ``max_server.access``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from max_server.access import Actor
from max_server.db import Database
from max_server.errors import Forbidden, Unauthorized
from max_server.services import users
from max_server.settings import Settings

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """One short session per request; reads do not take SQLite's write lock."""
    db = get_db(request)
    with db.session(write=request.method not in _READ_METHODS) as session:
        yield session


DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer max_…`")


def authenticate_token(db: Database, raw: str) -> tuple[Actor, int]:
    """The actor behind a raw token and the token's id; raises 401. Shared with the websocket."""
    with db.session(write=False) as session:
        found = users.authenticate(session, raw)
        if found is None:
            raise Unauthorized(
                "the token is invalid, revoked, or its user is deactivated", code="invalid_token"
            )
        user, token = found
        actor = users.actor_for(session, user)
    with db.session(write=True) as session:
        users.touch_token(session, token)
    assert token.id is not None
    return actor, token.id


def get_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("an API token is required: Authorization: Bearer max_…", code="missing_token")
    actor, _ = authenticate_token(get_db(request), credentials.credentials)
    request.state.actor = actor
    return actor


class RoleGuard:
    """Dependency that admits actors whose global role is at least ``min_role``."""

    def __init__(self, min_role: str) -> None:
        self.min_role = min_role

    def __call__(self, actor: Annotated[Actor, Depends(get_actor)]) -> Actor:
        if not actor.at_least(self.min_role):
            raise Forbidden(f"this needs the {self.min_role} role or higher", code="insufficient_role")
        return actor

    def __repr__(self) -> str:
        return f"RoleGuard({self.min_role!r})"


require_agent = RoleGuard("agent")
require_supervisor = RoleGuard("supervisor")
require_admin = RoleGuard("admin")

AgentActor = Annotated[Actor, Depends(require_agent)]
SupervisorActor = Annotated[Actor, Depends(require_supervisor)]
AdminActor = Annotated[Actor, Depends(require_admin)]
