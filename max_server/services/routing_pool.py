"""The agents an assignment pass chooses from, and the locks that keep it from overbooking them.

A pass reads its team's online agents with their load, idleness and the skills its queue asks
for in one query (column rows, no ORM objects: it runs for every pass, over hundreds of agents).
On PostgreSQL it then locks only the agents it picked and counts their load again under the lock
(:class:`Reservations`): an agent in several teams is counted by each team's pass, and the team
lock alone cannot stop two teams from filling the same last slot. SQLite has one writer.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, BindParameter, Select, any_, bindparam, case, func, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, col, select

from max_server.db import is_postgres
from max_server.domain.routing import Candidate
from max_server.models import AgentSkill, Conversation, TeamMember, User

# Beyond this many distinct skills in one page, one subquery per skill stops paying: a second query.
_JOINED_SKILLS = 4


def skill_names(required: Iterable[list[Any] | None]) -> set[str]:
    return {str(r["skill"]) for needs in required for r in needs or ()}


def _members_query(skills: int) -> Select[Any]:
    """The pool's query for ``skills`` skills (bound as skill_0, skill_1...). Built once per
    number of skills: building a statement costs more than running this one."""
    in_team = select(TeamMember.user_id).where(TeamMember.team_id == bindparam("team"))
    usage = (
        select(
            col(Conversation.assignee_id).label("user_id"),
            func.count(case((col(Conversation.status) == "assigned", 1))).label("load"),
            func.max(Conversation.assigned_at).label("last"),
        )
        .where(col(Conversation.assignee_id).in_(in_team))
        .group_by(col(Conversation.assignee_id))
        .subquery()
    )
    query = (
        select(col(User.id), col(User.name), col(User.capacity))
        .add_columns(func.coalesce(usage.c.load, 0), usage.c.last)
        .join(TeamMember, col(TeamMember.user_id) == User.id)
        .outerjoin(usage, usage.c.user_id == User.id)
        .where(
            col(TeamMember.team_id) == bindparam("team"),
            col(User.is_active).is_(True),
            col(User.presence) == "online",
        )
        .order_by(col(User.id))
    )
    if not skills:
        return query
    # The levels in one pass over the skills asked for, one column per skill (a probe of the
    # (user, skill) index per agent and skill costs more once a team has hundreds of agents).
    names: list[BindParameter[str]] = [bindparam(f"skill_{n}") for n in range(skills)]
    levels = (
        select(
            col(AgentSkill.user_id).label("user_id"),
            *(
                func.max(case((col(AgentSkill.skill) == name, AgentSkill.proficiency))).label(f"level_{n}")
                for n, name in enumerate(names)
            ),
        )
        .where(col(AgentSkill.skill).in_(names))
        .group_by(col(AgentSkill.user_id))
        .subquery()
    )
    return query.outerjoin(levels, levels.c.user_id == User.id).add_columns(
        *(levels.c[f"level_{n}"] for n in range(skills))
    )


_MEMBERS = [_members_query(n) for n in range(_JOINED_SKILLS + 1)]


def candidates(session: Session, team_id: int, skills: Collection[str] = ()) -> list[Candidate]:
    """The team's online, active agents with their load (open assigned conversations), their
    last assignment and their proficiency in ``skills`` (only those: choosing needs no others).
    Column rows through the session's connection: no ORM objects, hundreds of rows."""
    joined = sorted(skills) if len(skills) <= _JOINED_SKILLS else []
    params: dict[str, Any] = {"team": team_id, **{f"skill_{n}": name for n, name in enumerate(joined)}}
    rows = session.connection().execute(_MEMBERS[len(joined)], params).all()
    pool = [Candidate(row[0], row[1], row[2], row[3], {}, row[4]) for row in rows]
    if joined:
        for candidate, row in zip(pool, rows, strict=True):
            for name, level in zip(joined, row[5:], strict=True):
                if level is not None:
                    candidate.skills[name] = level
    if skills and not joined:
        load_skills(session, team_id, pool, skills)
    return pool


def load_skills(session: Session, team_id: int, pool: list[Candidate], skills: Iterable[str]) -> None:
    """Adds the pool's proficiency in ``skills`` (a later page of the queue may need others)."""
    by_id = {c.user_id: c for c in pool}
    for user_id, skill, level in session.execute(
        select(AgentSkill.user_id, AgentSkill.skill, AgentSkill.proficiency).where(
            col(AgentSkill.skill).in_(sorted(skills)),
            col(AgentSkill.user_id).in_(select(TeamMember.user_id).where(TeamMember.team_id == team_id)),
        )
    ).all():
        if user_id in by_id:
            by_id[user_id].skills[skill] = level


# Agents' locks use PostgreSQL's two-key advisory lock space (apart from the one-key locks of
# teams, customers and the sequencer); user ids fold into 31 bits, a collision only serializes.
_KEY = 0x7FFFFFFF
_AGENT_LOCKS = zlib.crc32(b"max:agent") & _KEY
_ID_ARRAY = ARRAY(BigInteger)
# Waits only for keys above every key this pass holds; below, it only tries. Any pass waits only
# "upwards", so no two passes can ever wait for each other (no deadlock), whatever order their
# choices come in. Keys go in ascending order: unnest keeps the array's order.
_LOCK = text(
    "SELECT k, CASE WHEN k > :top THEN pg_advisory_xact_lock(CAST(:ns AS integer), k) IS NOT NULL"
    " ELSE pg_try_advisory_xact_lock(CAST(:ns AS integer), k) END"
    " FROM unnest(CAST(:keys AS integer[])) AS k"
)

Usage = tuple[int, datetime | None]  # open assigned conversations, last assignment
_USAGE = select(
    User,
    select(func.count())
    .where(col(Conversation.assignee_id) == User.id, Conversation.status == "assigned")
    .correlate(User)
    .scalar_subquery(),
    select(func.max(Conversation.assigned_at))
    .where(col(Conversation.assignee_id) == User.id)
    .correlate(User)
    .scalar_subquery(),
).where(col(User.id) == any_(bindparam("ids", type_=_ID_ARRAY)))


class Reservations:
    """The agents a pass may assign to: locked until commit, their load counted under the lock."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.locking = is_postgres(session)
        self.held: set[int] = set()  # agents locked and counted (all of them on SQLite)
        self.rows: list[User] = []  # their rows, referenced so the session's identity map keeps them
        self._top = -1  # the highest key held

    def secure(self, user_ids: Iterable[int]) -> tuple[dict[int, Usage], set[int]]:
        """Locks the agents not held yet and counts their load again under the lock (another
        team's pass may have assigned them since the pool was read). Returns their fresh usage
        and the agents another pass holds right now (only when waiting could deadlock: they
        are left out of this pass; that pass fills them, the sweep comes back for the rest)."""
        todo = sorted(set(user_ids) - self.held)
        if not todo:
            return {}, set()
        if not self.locking:
            self.held.update(todo)  # one writer: nothing changed since the pool was read
            return {}, set()
        keys = sorted({user_id & _KEY for user_id in todo})
        got = {
            key
            for key, locked in self.session.connection()
            .execute(_LOCK, {"top": self._top, "ns": _AGENT_LOCKS, "keys": keys})
            .all()
            if locked
        }
        if got:
            self._top = max(self._top, *got)
        locked_ids = [user_id for user_id in todo if user_id & _KEY in got]
        self.held.update(locked_ids)
        return self._count(locked_ids), set(todo) - set(locked_ids)

    def _count(self, user_ids: list[int]) -> dict[int, Usage]:
        """Fresh usage, in a statement after the lock's (a statement sees the commits made before
        it began). The agents' rows come along: the assignment event presents its assignee."""
        if not user_ids:
            return {}
        rows = self.session.execute(_USAGE, {"ids": user_ids}).all()
        self.rows.extend(user for user, _, _ in rows)
        return {user.id: (int(load), at) for user, load, at in rows}
