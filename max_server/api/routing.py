"""Routing rules, routing decisions, agents' skills, and rate-limit blocks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from max_server import clock
from max_server.api.deps import AdminActor, AgentActor, SessionDep, SupervisorActor
from max_server.schemas import (
    CustomerBlockList,
    RoutingDecisionList,
    RoutingDecisionPublic,
    RoutingRuleCreate,
    RoutingRuleList,
    RoutingRulePublic,
    RuleMove,
    RuleTest,
    RuleTestResult,
    SkillList,
    SkillPublic,
    SkillsSet,
)
from max_server.services import rate_limits, routing_decisions, routing_rules
from max_server.services.conversations import get_visible
from max_server.services.pagination import DEFAULT_LIMIT, MAX_LIMIT, cursor_int, encode_cursor

router = APIRouter(prefix="/api/v1", tags=["routing"])


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.get("/routing/rules", response_model=RoutingRuleList)
def list_rules(
    session: SessionDep, actor: SupervisorActor, cursor: str | None = None, limit: Limit = DEFAULT_LIMIT
) -> RoutingRuleList:
    """Rules in the order they are tried (paginated: ``cursor``/``limit``)."""
    rows, after = routing_rules.rules_page(session, cursor_int(cursor, "position"), limit)
    return RoutingRuleList(
        rules=routing_rules.present(session, rows),
        next_cursor=encode_cursor(position=after) if after is not None else None,
    )


@router.post("/routing/rules", response_model=RoutingRulePublic, status_code=status.HTTP_201_CREATED)
def add_rule(session: SessionDep, actor: AdminActor, body: RoutingRuleCreate) -> RoutingRulePublic:
    """A triage rule: keywords (comma separated, accents and case ignored) or a regular expression
    matched against a conversation's first message; the first match by position applies."""
    return routing_rules.present(session, [routing_rules.add_rule(session, actor, body)])[0]


@router.delete("/routing/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_rule(session: SessionDep, actor: AdminActor, rule_id: int) -> None:
    routing_rules.remove_rule(session, actor, rule_id)


@router.post("/routing/rules/{rule_id}/move", response_model=RoutingRuleList)
def move_rule(session: SessionDep, actor: AdminActor, rule_id: int, body: RuleMove) -> RoutingRuleList:
    routing_rules.move_rule(session, actor, rule_id, body.position)
    return RoutingRuleList(rules=routing_rules.present(session, routing_rules.list_rules(session)))


@router.post("/routing/rules/test", response_model=RuleTestResult)
def test_rules(session: SessionDep, actor: SupervisorActor, body: RuleTest) -> RuleTestResult:
    """Which rule a first message would match, and what it would set."""
    return routing_rules.test_text(session, body.text, body.channel)


@router.get("/conversations/{conversation_id}/routing", response_model=RoutingDecisionList)
def explain(session: SessionDep, actor: AgentActor, conversation_id: int) -> RoutingDecisionList:
    """Every routing decision for a conversation: candidates, scores, the winner and why."""
    get_visible(session, actor, conversation_id)
    rows = routing_decisions.decisions(session, conversation_id)
    return RoutingDecisionList(
        decisions=[RoutingDecisionPublic.model_validate(routing_decisions.explain(d)) for d in rows]
    )


@router.get("/skills", response_model=SkillList)
def list_skills(
    session: SessionDep,
    actor: AgentActor,
    user: str | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> SkillList:
    """Skills by user, then skill (paginated: ``cursor``/``limit``)."""
    rows, last = routing_rules.skills_page(session, user, routing_rules.skills_cursor(cursor), limit)
    return SkillList(
        skills=[SkillPublic.model_validate(s) for s in rows],
        next_cursor=encode_cursor(user_id=last[0], skill=last[1]) if last else None,
    )


@router.put("/users/{user}/skills", response_model=SkillList)
def set_skills(session: SessionDep, actor: AdminActor, user: str, body: SkillsSet) -> SkillList:
    """Adds or updates skills (1–5); skills not named stay as they are."""
    return SkillList(
        skills=[
            SkillPublic.model_validate(s) for s in routing_rules.set_skills(session, actor, user, body.skills)
        ]
    )


@router.delete("/users/{user}/skills/{skill}", status_code=status.HTTP_204_NO_CONTENT)
def remove_skill(session: SessionDep, actor: AdminActor, user: str, skill: str) -> None:
    routing_rules.remove_skill(session, actor, user, skill)


@router.get("/rate-limits/blocks", response_model=CustomerBlockList)
def list_blocks(
    session: SessionDep,
    actor: SupervisorActor,
    all: bool = False,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> CustomerBlockList:
    """Customers held by the rate limit now (``all=true``: also past blocks), newest first
    (paginated: ``cursor``/``limit``)."""
    rows, next_id = rate_limits.blocks(
        session, clock.now(), include_past=all, actor=actor, before_id=cursor_int(cursor), limit=limit
    )
    return CustomerBlockList(
        blocks=rate_limits.present_blocks(session, rows),
        next_cursor=encode_cursor(id=next_id) if next_id else None,
    )


@router.post("/rate-limits/blocks/{customer_id}/unblock", response_model=dict[str, int])
def unblock(session: SessionDep, actor: SupervisorActor, customer_id: int) -> dict[str, int]:
    """Lifts a customer's block and releases their held conversations to routing."""
    return {"lifted": rate_limits.unblock(session, actor, customer_id, clock.now())}
