"""Who may see and do what: the one statement of DESIGN §5's visibility rule.

A user sees the conversations (and their customers) of every team they belong to and those
assigned to them; a team's supervisors may act for others in that team; admins see and do
everything. ``api/deps.py`` applies these rules to every request; the live stream applies the
same predicates to events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, false, or_, true

from max_server.domain.roles import role_at_least


@dataclass(frozen=True)
class Actor:
    """The person (or process) on whose behalf a service runs."""

    user_id: int | None
    role: str
    label: str
    name: str = ""
    teams: dict[int, str] = field(default_factory=dict)  # team_id -> member|supervisor

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(user_id=None, role="admin", label=label, name=label)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_system(self) -> bool:
        return self.user_id is None

    def at_least(self, role: str) -> bool:
        return role_at_least(self.role, role)

    def belongs_to(self, team_id: int | None) -> bool:
        return team_id is not None and team_id in self.teams

    def supervises(self, team_id: int | None) -> bool:
        return self.is_admin or (team_id is not None and self.teams.get(team_id) == "supervisor")


def can_see(actor: Actor, team_id: int | None, assignee_id: int | None) -> bool:
    """May ``actor`` see a conversation (or an event about one) of this team and assignee?"""
    if actor.is_admin:
        return True
    if assignee_id is not None and assignee_id == actor.user_id:
        return True
    return actor.belongs_to(team_id)


def can_act_for_others(actor: Actor, team_id: int | None) -> bool:
    """Assign, transfer and close conversations that are not one's own."""
    return actor.supervises(team_id)


def visible_filter(actor: Actor, team_column: Any, assignee_column: Any) -> ColumnElement[bool]:
    """SQL form of :func:`can_see` over the given columns."""
    if actor.is_admin:
        return true()
    clauses: list[ColumnElement[bool]] = []
    if actor.teams:
        clauses.append(team_column.in_(sorted(actor.teams)))
    if actor.user_id is not None:
        clauses.append(assignee_column == actor.user_id)
    return or_(*clauses) if clauses else false()
