"""Teams and their members."""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from max_server.access import Actor
from max_server.domain.timezones import check_timezone
from max_server.errors import Conflict, Forbidden, Unprocessable, not_found
from max_server.models import Team, TeamMember, User
from max_server.schemas import TeamCreate, TeamUpdate
from max_server.services import audit
from max_server.services.pagination import clamp_limit
from max_server.services.users import get_user


def _require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Forbidden("only admins manage teams")


def valid_timezone(name: str) -> str:
    """The IANA name, or 422 ``invalid_timezone`` (the one check of a team's time zone)."""
    try:
        return check_timezone(name)
    except ValueError as exc:
        raise Unprocessable(str(exc), code="invalid_timezone") from None


def create_team(session: Session, actor: Actor, data: TeamCreate) -> Team:
    _require_admin(actor)
    team = Team(
        slug=data.slug,
        name=data.name or data.slug.replace("-", " ").replace("_", " ").title(),
        timezone=valid_timezone(data.timezone),
        auto_assign=data.auto_assign,
    )
    session.add(team)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"team {data.slug!r} exists", code="team_exists") from None
    audit.record(session, actor, "team.created", "team", team.id, {"slug": team.slug})
    session.commit()
    return team


def find_team(session: Session, ref: str | int) -> Team:
    """A team by id or slug."""
    team: Team | None
    if isinstance(ref, int) or ref.isdecimal():  # not isdigit(): int() refuses "¹"
        team = session.get(Team, int(ref))
    else:
        team = session.exec(select(Team).where(Team.slug == ref)).first()
    if team is None:
        raise not_found("team", ref)
    return team


def list_teams(
    session: Session, *, after_slug: str | None = None, limit: int | None = None
) -> tuple[list[tuple[Team, int]], str | None]:
    """A page of teams by slug, each with its member count; and the slug to continue after."""
    size = clamp_limit(limit)
    counts = select(TeamMember.team_id, func.count().label("n")).group_by(col(TeamMember.team_id)).subquery()
    query = select(Team, func.coalesce(counts.c.n, 0)).outerjoin(counts, counts.c.team_id == Team.id)
    if after_slug is not None:
        query = query.where(col(Team.slug) > after_slug)
    rows = session.exec(query.order_by(col(Team.slug)).limit(size + 1)).all()
    page = [(team, int(n)) for team, n in rows[:size]]
    return page, (page[-1][0].slug if len(rows) > size else None)


def update_team(session: Session, actor: Actor, ref: str, data: TeamUpdate) -> Team:
    """Name and auto-assignment here; the time zone and the after-hours message go through the
    hours service's rules (a new time zone moves business-hours SLA deadlines, a message must
    render), like ``max hours set --timezone`` and ``max hours message``."""
    # The hours and SLA services build on this module (find_team): imported here, not above.
    from max_server.services import hours, sla_policies

    _require_admin(actor)
    team = find_team(session, ref)
    assert team.id is not None
    changes = data.model_dump(exclude_unset=True)
    for key in ("name", "auto_assign"):
        if changes.get(key) is not None:
            setattr(team, key, changes[key])
    recompute = False
    if changes.get("timezone") is not None:
        recompute = hours.set_timezone(team, changes["timezone"])
        changes["timezone"] = team.timezone
    if "after_hours_message" in changes:
        team.after_hours_message = changes["after_hours_message"] = hours.checked_message(
            changes["after_hours_message"]
        )
    session.add(team)
    audit.record(session, actor, "team.updated", "team", team.id, changes)
    if recompute:
        sla_policies.request_recompute(session, team.id)
    session.commit()
    return team


def members(session: Session, team_id: int) -> list[tuple[TeamMember, User]]:
    return list(
        session.exec(
            select(TeamMember, User)
            .join(User, col(User.id) == TeamMember.user_id)
            .where(TeamMember.team_id == team_id)
            .order_by(col(User.name))
        ).all()
    )


def set_member(session: Session, actor: Actor, ref: str, user_id: int, role: str) -> TeamMember:
    """Adds a user to a team, or changes their role in it."""
    _require_admin(actor)
    team = find_team(session, ref)
    user = get_user(session, user_id)
    member = session.exec(
        select(TeamMember).where(TeamMember.team_id == team.id, TeamMember.user_id == user.id)
    ).first()
    assert team.id is not None
    assert user.id is not None
    if member is None:
        member = TeamMember(team_id=team.id, user_id=user.id, role=role)
    else:
        member.role = role
    session.add(member)
    audit.record(session, actor, "team.member_set", "team", team.id, {"user_id": user.id, "role": role})
    session.commit()
    return member


def remove_member(session: Session, actor: Actor, ref: str, user_id: int) -> None:
    _require_admin(actor)
    team = find_team(session, ref)
    member = session.exec(
        select(TeamMember).where(TeamMember.team_id == team.id, TeamMember.user_id == user_id)
    ).first()
    if member is None:
        raise not_found("team member", user_id)
    session.delete(member)
    audit.record(session, actor, "team.member_removed", "team", team.id, {"user_id": user_id})
    session.commit()
