"""Teams and their members."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from max_server.api.deps import AdminActor, AgentActor, SessionDep
from max_server.schemas import TeamCreate, TeamList, TeamMemberPublic, TeamMemberSet, TeamPublic, TeamUpdate
from max_server.services import present, teams
from max_server.services.pagination import decode_cursor, encode_cursor
from max_server.services.users import find_user

router = APIRouter(prefix="/api/v1/teams", tags=["teams"])


def _detail(session: SessionDep, team_id: int) -> TeamPublic:
    team = teams.find_team(session, team_id)
    rows = teams.members(session, team_id)
    members = [TeamMemberPublic(user_id=u.id, name=u.name, email=u.email, role=m.role) for m, u in rows]
    return present.team(team, len(members)).model_copy(update={"members": members})


@router.get("", response_model=TeamList)
def list_teams(
    session: SessionDep,
    actor: AgentActor,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> TeamList:
    """Teams by slug, a page at a time (``next_cursor``)."""
    after = decode_cursor(cursor).get("slug")
    after_slug = str(after) if after is not None else None
    rows, next_slug = teams.list_teams(session, after_slug=after_slug, limit=limit)
    return TeamList(
        teams=[present.team(t, n) for t, n in rows],
        next_cursor=encode_cursor(slug=next_slug) if next_slug else None,
    )


@router.post("", response_model=TeamPublic, status_code=status.HTTP_201_CREATED)
def create_team(session: SessionDep, actor: AdminActor, body: TeamCreate) -> TeamPublic:
    return present.team(teams.create_team(session, actor, body))


@router.get("/{team}", response_model=TeamPublic)
def read_team(session: SessionDep, actor: AgentActor, team: str) -> TeamPublic:
    """A team by id or slug, with its members."""
    found = teams.find_team(session, team)
    assert found.id is not None
    return _detail(session, found.id)


@router.patch("/{team}", response_model=TeamPublic)
def update_team(session: SessionDep, actor: AdminActor, team: str, body: TeamUpdate) -> TeamPublic:
    updated = teams.update_team(session, actor, team, body)
    assert updated.id is not None
    return _detail(session, updated.id)


@router.put("/{team}/members/{user}", response_model=TeamPublic)
def set_member(
    session: SessionDep, actor: AdminActor, team: str, user: str, body: TeamMemberSet
) -> TeamPublic:
    """Adds a member (user id or email) or changes their role (member or supervisor)."""
    user_id = find_user(session, user).id
    assert user_id is not None
    member = teams.set_member(session, actor, team, user_id, body.role)
    return _detail(session, member.team_id)


@router.delete("/{team}/members/{user}", response_model=TeamPublic)
def remove_member(session: SessionDep, actor: AdminActor, team: str, user: str) -> TeamPublic:
    found = teams.find_team(session, team)
    user_id = find_user(session, user).id
    assert user_id is not None
    teams.remove_member(session, actor, team, user_id)
    assert found.id is not None
    return _detail(session, found.id)
