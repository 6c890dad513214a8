"""Triage rules (admins) and agents' skills."""

from __future__ import annotations

from sqlalchemy import and_, func, or_, update
from sqlmodel import Session, col, delete, select

from max_server.access import Actor
from max_server.domain import routing as rules
from max_server.errors import BadRequest, Forbidden, Unprocessable, not_found
from max_server.models import AgentSkill, RoutingRule, Team
from max_server.schemas import RoutingRuleCreate, RoutingRulePublic, RuleTestResult, SkillRequirement
from max_server.services import audit
from max_server.services.channels import find_account
from max_server.services.pagination import MAX_LIMIT, clamp_limit, cursor_int, decode_cursor
from max_server.services.routing import first_match
from max_server.services.teams import find_team
from max_server.services.users import find_user


def _admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Forbidden("only admins change routing")


def present(session: Session, rows: list[RoutingRule]) -> list[RoutingRulePublic]:
    slugs = {t.id: t.slug for t in session.exec(select(Team))}
    return [
        RoutingRulePublic.model_validate(
            {**r.model_dump(), "set_team": slugs.get(r.set_team_id) if r.set_team_id else None}
        )
        for r in rows
    ]


def list_rules(session: Session) -> list[RoutingRule]:
    return list(session.exec(select(RoutingRule).order_by(col(RoutingRule.position))))


def rules_page(
    session: Session, after_position: int | None = None, limit: int | None = None
) -> tuple[list[RoutingRule], int | None]:
    """Rules in the order they are tried; returns a page and the position to continue after."""
    size = clamp_limit(limit)
    query = select(RoutingRule).order_by(col(RoutingRule.position))
    if after_position is not None:
        query = query.where(col(RoutingRule.position) > after_position)
    rows = list(session.exec(query.limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1].position if more and rows else None)


def add_rule(session: Session, actor: Actor, data: RoutingRuleCreate) -> RoutingRule:
    _admin(actor)
    problem = rules.check_pattern(data.match_type, data.pattern)
    if problem:
        raise Unprocessable(problem, code="invalid_pattern")
    count = session.exec(select(func.count()).select_from(RoutingRule)).one()
    position = min(data.position or count + 1, count + 1)
    session.execute(
        update(RoutingRule)
        .where(col(RoutingRule.position) >= position)
        .values(position=RoutingRule.position + 1)
    )
    rule = RoutingRule(
        position=position,
        name=data.name,
        match_type=data.match_type,
        pattern=data.pattern,
        channel_account_id=find_account(session, data.channel).id if data.channel else None,
        set_team_id=find_team(session, data.team).id if data.team else None,
        set_priority=data.priority,
        required_skills=[r.model_dump() for r in data.required_skills],
    )
    session.add(rule)
    session.flush()
    audit.record(
        session,
        actor,
        "routing.rule_added",
        "routing_rule",
        rule.id,
        {"name": rule.name, "position": position},
    )
    session.commit()
    return rule


def _get(session: Session, rule_id: int) -> RoutingRule:
    rule = session.get(RoutingRule, rule_id)
    if rule is None:
        raise not_found("routing rule", rule_id)
    return rule


def remove_rule(session: Session, actor: Actor, rule_id: int) -> None:
    _admin(actor)
    rule = _get(session, rule_id)
    position = rule.position
    session.delete(rule)
    session.flush()
    session.execute(
        update(RoutingRule)
        .where(col(RoutingRule.position) > position)
        .values(position=RoutingRule.position - 1)
    )
    audit.record(session, actor, "routing.rule_removed", "routing_rule", rule_id, {"name": rule.name})
    session.commit()


def move_rule(session: Session, actor: Actor, rule_id: int, position: int) -> RoutingRule:
    """Moves a rule to ``position`` (1-based), shifting the others."""
    _admin(actor)
    rule = _get(session, rule_id)
    count = session.exec(select(func.count()).select_from(RoutingRule)).one()
    target = max(1, min(position, count))
    rows = [r for r in list_rules(session) if r.id != rule.id]
    rows.insert(target - 1, rule)
    for index, row in enumerate(rows, start=1):
        row.position = index
        session.add(row)
    audit.record(session, actor, "routing.rule_moved", "routing_rule", rule_id, {"position": target})
    session.commit()
    return rule


def test_text(session: Session, text: str, channel: str | None) -> RuleTestResult:
    account_id = find_account(session, channel).id if channel else None
    rule = first_match([r for r in list_rules(session) if r.is_active], text, account_id)
    if rule is None:
        return RuleTestResult(matched=False)
    shown = present(session, [rule])[0]
    sets = {
        "team": shown.set_team,
        "priority": rule.set_priority,
        "required_skills": [SkillRequirement.model_validate(r).model_dump() for r in rule.required_skills],
    }
    return RuleTestResult(matched=True, rule=shown, sets={k: v for k, v in sets.items() if v})


# Skills ---------------------------------------------------------------------------------
def skills_of(session: Session, user_ref: str | None) -> list[AgentSkill]:
    return skills_page(session, user_ref, limit=MAX_LIMIT)[0]


def skills_cursor(cursor: str | None) -> tuple[int, str] | None:
    """The (user_id, skill) a ``/skills`` cursor continues after (400 for a made-up one)."""
    position = decode_cursor(cursor)
    if not position:
        return None
    user_id, skill = cursor_int(cursor, "user_id"), position.get("skill")
    if user_id is None or not isinstance(skill, str):
        raise BadRequest("the cursor is not one this server gave out", code="invalid_cursor")
    return user_id, skill


def skills_page(
    session: Session,
    user_ref: str | None,
    after: tuple[int, str] | None = None,
    limit: int | None = None,
) -> tuple[list[AgentSkill], tuple[int, str] | None]:
    """Skills by user, then skill name; returns a page and the (user_id, skill) to continue
    after (or None)."""
    size = clamp_limit(limit)
    query = select(AgentSkill).order_by(col(AgentSkill.user_id), col(AgentSkill.skill))
    if user_ref is not None:
        query = query.where(AgentSkill.user_id == find_user(session, user_ref).id)
    if after is not None:
        user_id, skill = after
        query = query.where(
            or_(
                col(AgentSkill.user_id) > user_id,
                and_(col(AgentSkill.user_id) == user_id, col(AgentSkill.skill) > skill),
            )
        )
    rows = list(session.exec(query.limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return rows, ((rows[-1].user_id, rows[-1].skill) if more and rows else None)


def set_skills(session: Session, actor: Actor, user_ref: str, skills: dict[str, int]) -> list[AgentSkill]:
    """Sets (adds or updates) the given skills; others stay."""
    _admin(actor)
    user = find_user(session, user_ref)
    for name, level in skills.items():
        skill = name.strip().lower()
        if not skill or len(skill) > 64 or not all(c.isalnum() or c in "_.-" for c in skill):
            raise Unprocessable(f"not a skill name: {name!r}", code="invalid_skill")
        if not 1 <= int(level) <= 5:
            raise Unprocessable(f"proficiency of {skill} must be 1 to 5", code="invalid_proficiency")
        found = session.exec(
            select(AgentSkill).where(AgentSkill.user_id == user.id, AgentSkill.skill == skill)
        ).first()
        if found is None:
            found = AgentSkill(user_id=user.id, skill=skill, proficiency=int(level))  # type: ignore[arg-type]
        found.proficiency = int(level)
        session.add(found)
    audit.record(session, actor, "skills.set", "user", user.id, {"skills": skills})
    session.commit()
    return skills_of(session, str(user.id))


def remove_skill(session: Session, actor: Actor, user_ref: str, skill: str) -> None:
    _admin(actor)
    user = find_user(session, user_ref)
    statement = delete(AgentSkill).where(
        col(AgentSkill.user_id) == user.id, col(AgentSkill.skill) == skill.lower()
    )
    result = session.exec(statement)
    if not result.rowcount:
        raise not_found("skill", skill)
    audit.record(session, actor, "skills.removed", "user", user.id, {"skill": skill})
    session.commit()
