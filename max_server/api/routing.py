"""Routing rules, routing decisions, agents' skills, and rate-limit blocks."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlmodel import col, select

from max_server import clock
from max_server.api.deps import AdminActor, AgentActor, SessionDep, SupervisorActor
from max_server.models import Customer
from max_server.schemas import (
    CustomerBlockList,
    CustomerBlockPublic,
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
from max_server.services import rate_limits, routing, routing_rules
from max_server.services.conversations import get_visible

router = APIRouter(prefix="/api/v1", tags=["routing"])


@router.get("/routing/rules", response_model=RoutingRuleList)
def list_rules(session: SessionDep, actor: SupervisorActor) -> RoutingRuleList:
    return RoutingRuleList(rules=routing_rules.present(session, routing_rules.list_rules(session)))


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
    rows = routing.decisions(session, conversation_id)
    return RoutingDecisionList(
        decisions=[RoutingDecisionPublic.model_validate(routing.explain(d)) for d in rows]
    )


@router.get("/skills", response_model=SkillList)
def list_skills(session: SessionDep, actor: AgentActor, user: str | None = None) -> SkillList:
    return SkillList(skills=[SkillPublic.model_validate(s) for s in routing_rules.skills_of(session, user)])


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
def list_blocks(session: SessionDep, actor: SupervisorActor, all: bool = False) -> CustomerBlockList:
    """Customers held by the rate limit now (``all=true``: also past blocks)."""
    rows = rate_limits.blocks(session, clock.now(), include_past=all, actor=actor)
    ids = {b.customer_id for b in rows}
    names = (
        dict(session.exec(select(Customer.id, Customer.name).where(col(Customer.id).in_(ids))).all())
        if ids
        else {}
    )
    return CustomerBlockList(
        blocks=[
            CustomerBlockPublic.model_validate({**b.model_dump(), "customer_name": names.get(b.customer_id)})
            for b in rows
        ]
    )


@router.post("/rate-limits/blocks/{customer_id}/unblock", response_model=dict[str, int])
def unblock(session: SessionDep, actor: SupervisorActor, customer_id: int) -> dict[str, int]:
    """Lifts a customer's block and releases their held conversations to routing."""
    return {"lifted": rate_limits.unblock(session, actor, customer_id, clock.now())}
