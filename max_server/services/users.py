"""Users, their API tokens, and turning a bearer token into an :class:`Actor`."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from max_server import clock
from max_server.access import Actor
from max_server.db import is_postgres
from max_server.domain.tokens import hash_token, looks_like_token, new_token
from max_server.errors import Conflict, Forbidden, not_found
from max_server.models import ApiToken, TeamMember, User
from max_server.schemas import UserCreate, UserUpdate
from max_server.services import audit
from max_server.services.pagination import clamp_limit

TOUCH_EVERY = timedelta(seconds=60)
_BOOTSTRAP_LOCK = 0x4D41_5842  # "MAXB": one first-user bootstrap at a time


def count_users(session: Session) -> int:
    return session.exec(select(func.count()).select_from(User)).one()


def create_user(session: Session, actor: Actor, data: UserCreate) -> tuple[User, str]:
    """Creates a user and their first token; the token is returned once and never stored."""
    if not actor.is_admin:
        raise Forbidden("only admins create users")
    user = User(name=data.name, email=data.email.lower(), role=data.role, capacity=data.capacity)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"a user with email {data.email} exists", code="email_taken") from None
    token = _add_token(session, user, "default")
    audit.record(session, actor, "user.created", "user", user.id, {"email": user.email, "role": user.role})
    session.commit()
    return user, token


def bootstrap_first_user(session: Session, data: UserCreate) -> tuple[User, str]:
    """Creates the first user of a database that has none (``max users create`` with no token
    anywhere). Serialized, so of two concurrent bootstraps only one finds the database empty: an
    advisory lock on PostgreSQL (counting alone would let both see zero users), the single
    writer (``BEGIN IMMEDIATE``) on SQLite. Raises :class:`Conflict` once users exist."""
    if is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _BOOTSTRAP_LOCK})
    if count_users(session) > 0:
        raise Conflict("this database already has users", code="users_exist")
    return create_user(session, Actor.system("cli-bootstrap"), data)


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise not_found("user", user_id)
    return user


def find_user(session: Session, ref: str) -> User:
    """A user by id or email."""
    if ref.isdecimal():  # not isdigit(): "¹" is a digit that int() refuses
        return get_user(session, int(ref))
    user = session.exec(select(User).where(User.email == ref.lower())).first()
    if user is None:
        raise not_found("user", ref)
    return user


def list_users(
    session: Session, *, after_id: int | None = None, limit: int | None = None, active: bool | None = None
) -> tuple[list[User], int | None]:
    size = clamp_limit(limit)
    query = select(User).order_by(col(User.id))
    if after_id is not None:
        query = query.where(col(User.id) > after_id)
    if active is not None:
        query = query.where(User.is_active == active)
    rows = list(session.exec(query.limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1].id if more and rows else None)


def update_user(session: Session, actor: Actor, user_id: int, data: UserUpdate) -> User:
    if not actor.is_admin:
        raise Forbidden("only admins change users")
    user = get_user(session, user_id)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if user.id == actor.user_id and (
        changes.get("role", "admin") != "admin" or changes.get("is_active") is False
    ):
        raise Conflict("you cannot demote or deactivate yourself", code="self_lockout")
    if changes.get("role") not in (None, "admin") or changes.get("is_active") is False:
        _keep_an_admin(session, user)
    before = {key: getattr(user, key) for key in changes}
    for key, value in changes.items():
        setattr(user, key, value)
    session.add(user)
    audit.record(session, actor, "user.updated", "user", user.id, {"before": before, "after": changes})
    session.commit()
    return user


def _keep_an_admin(session: Session, user: User) -> None:
    if user.role != "admin" or not user.is_active:
        return
    others = session.exec(
        select(func.count())
        .select_from(User)
        .where(
            User.role == "admin",
            col(User.is_active).is_(True),
            User.id != user.id,
        )
    ).one()
    if others == 0:
        raise Conflict("this is the last active admin", code="last_admin")


# Tokens ---------------------------------------------------------------------------------
def _add_token(session: Session, user: User, name: str) -> str:
    token = new_token()
    assert user.id is not None
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), name=name))
    return token


def create_token(session: Session, actor: Actor, user_id: int, name: str) -> tuple[ApiToken, str]:
    if not (actor.is_admin or actor.user_id == user_id):
        raise Forbidden("you may create tokens only for yourself")
    user = get_user(session, user_id)
    if not user.is_active:
        raise Conflict(f"user {user_id} is deactivated", code="user_inactive")
    token = new_token()
    row = ApiToken(user_id=user_id, token_hash=hash_token(token), name=name)
    session.add(row)
    session.flush()
    audit.record(session, actor, "token.created", "api_token", row.id, {"user_id": user_id, "name": name})
    session.commit()
    return row, token


def list_tokens(session: Session, actor: Actor, user_id: int) -> list[ApiToken]:
    if not (actor.is_admin or actor.user_id == user_id):
        raise not_found("user", user_id)
    get_user(session, user_id)
    return list(session.exec(select(ApiToken).where(ApiToken.user_id == user_id).order_by(col(ApiToken.id))))


def revoke_token(session: Session, actor: Actor, token_id: int) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None or not (actor.is_admin or actor.user_id == row.user_id):
        raise not_found("token", token_id)
    if row.revoked_at is None:
        row.revoked_at = clock.now()
        session.add(row)
        audit.record(session, actor, "token.revoked", "api_token", row.id, {"user_id": row.user_id})
        session.commit()
    return row


def authenticate(session: Session, raw_token: str) -> tuple[User, ApiToken] | None:
    """The active user behind a bearer token, or None. Never logs the token."""
    if not looks_like_token(raw_token):
        return None
    found = session.exec(
        select(ApiToken, User)
        .join(User, col(User.id) == ApiToken.user_id)
        .where(ApiToken.token_hash == hash_token(raw_token))
    ).first()
    if found is None:
        return None
    token, user = found
    if token.revoked_at is not None or not user.is_active:
        return None
    return user, token


def token_is_valid(session: Session, token_id: int) -> bool:
    """Still usable? (The live stream re-checks this to close revoked connections.)"""
    found = session.exec(
        select(ApiToken.revoked_at, User.is_active)
        .join(User, col(User.id) == ApiToken.user_id)
        .where(ApiToken.id == token_id)
    ).first()
    return found is not None and found[0] is None and bool(found[1])


def touch_token(session: Session, token: ApiToken) -> None:
    """Records use at most once a minute per token, so reads stay reads."""
    now = clock.now()
    if token.last_used_at is not None and now - token.last_used_at < TOUCH_EVERY:
        return
    session.execute(update(ApiToken).where(col(ApiToken.id) == token.id).values(last_used_at=now))
    session.commit()


def actor_for(session: Session, user: User) -> Actor:
    memberships = session.exec(
        select(TeamMember.team_id, TeamMember.role).where(TeamMember.user_id == user.id)
    ).all()
    return Actor(
        user_id=user.id,
        role=user.role,
        label=f"user:{user.id}",
        name=user.name,
        teams=dict(memberships),
    )
