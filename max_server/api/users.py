"""Users, their tokens, and ``/me``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from sqlmodel import col, select

from max_server import clock
from max_server.api.deps import AdminActor, AgentActor, SessionDep
from max_server.models import Team, TeamMember
from max_server.schemas import (
    Me,
    PresenceSet,
    TeamMembership,
    TokenCreate,
    TokenCreated,
    TokenList,
    TokenPublic,
    UserCreate,
    UserCreated,
    UserList,
    UserPublic,
    UserUpdate,
)
from max_server.services import presence, present, users
from max_server.services.pagination import cursor_int, encode_cursor

router = APIRouter(prefix="/api/v1", tags=["users"])


@router.get("/me", response_model=Me)
def read_me(session: SessionDep, actor: AgentActor) -> Me:
    """The caller, with the teams they belong to."""
    assert actor.user_id is not None
    user = users.get_user(session, actor.user_id)
    rows = session.exec(
        select(Team, TeamMember.role)
        .join(TeamMember, col(TeamMember.team_id) == Team.id)
        .where(TeamMember.user_id == user.id)
        .order_by(col(Team.slug))
    ).all()
    teams = [TeamMembership(id=t.id, slug=t.slug, name=t.name, role=role) for t, role in rows]
    return Me(**present.user(user).model_dump(), teams=teams)


@router.put("/me/presence", response_model=UserPublic)
def put_presence(session: SessionDep, actor: AgentActor, body: PresenceSet) -> UserPublic:
    """The console's heartbeat: keeps the caller ``online`` (or sets ``away``/``offline``).
    Agents silent for ``routing.presence_timeout`` are turned ``away`` by a sweep."""
    return present.user(presence.heartbeat(session, actor, body.presence, clock.now()))


@router.get("/users", response_model=UserList)
def list_users(
    session: SessionDep,
    actor: AgentActor,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    active: bool | None = None,
) -> UserList:
    """Everyone (agents need names to transfer and assign)."""
    rows, next_id = users.list_users(session, after_id=cursor_int(cursor), limit=limit, active=active)
    return UserList(
        users=[present.user(u) for u in rows],
        next_cursor=encode_cursor(id=next_id) if next_id else None,
    )


@router.post("/users", response_model=UserCreated, status_code=status.HTTP_201_CREATED)
def create_user(session: SessionDep, actor: AdminActor, body: UserCreate) -> UserCreated:
    """Creates a user and their first token (shown once)."""
    user, token = users.create_user(session, actor, body)
    return UserCreated(user=present.user(user), token=token)


UserRef = Annotated[str, Path(description="a user id or email")]


def _user_id(session: SessionDep, ref: str) -> int:
    found = users.find_user(session, ref).id
    assert found is not None
    return found


@router.get("/users/{user}", response_model=UserPublic)
def read_user(session: SessionDep, actor: AgentActor, user: UserRef) -> UserPublic:
    return present.user(users.find_user(session, user))


@router.patch("/users/{user}", response_model=UserPublic)
def update_user(session: SessionDep, actor: AdminActor, user: UserRef, body: UserUpdate) -> UserPublic:
    """Changes name, role, capacity or active state."""
    return present.user(users.update_user(session, actor, _user_id(session, user), body))


@router.get("/users/{user}/tokens", response_model=TokenList)
def list_tokens(session: SessionDep, actor: AgentActor, user: UserRef) -> TokenList:
    """A user's tokens (never the secrets). Admins see anyone's; others only their own."""
    rows = users.list_tokens(session, actor, _user_id(session, user))
    return TokenList(tokens=[TokenPublic.model_validate(t) for t in rows])


@router.post("/users/{user}/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(session: SessionDep, actor: AgentActor, user: UserRef, body: TokenCreate) -> TokenCreated:
    """A new token for a user (admins: anyone; others: themselves). Shown once."""
    row, token = users.create_token(session, actor, _user_id(session, user), body.name)
    return TokenCreated(token=token, api_token=TokenPublic.model_validate(row))


@router.delete("/tokens/{token_id}", response_model=TokenPublic)
def revoke_token(session: SessionDep, actor: AgentActor, token_id: int) -> TokenPublic:
    """Revokes a token at once (admins: anyone's; others: their own)."""
    return TokenPublic.model_validate(users.revoke_token(session, actor, token_id))
