"""Wire models for routing rules, decisions, skills and rate-limit blocks."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from max_server.schemas.core import Id, Input, Priority, Wire


class SkillRequirement(Wire):
    skill: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    min: int = Field(1, ge=1, le=5)


class RoutingRulePublic(Wire):
    id: Id
    position: int
    name: str
    match_type: Literal["keywords", "regex"]
    pattern: str
    channel_account_id: Id | None = None
    set_team: str | None = None  # slug
    set_priority: Priority | None = None
    required_skills: list[SkillRequirement] = Field(default_factory=list)
    is_active: bool
    created_at: datetime


class RoutingRuleCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    match_type: Literal["keywords", "regex"] = "keywords"
    pattern: str = Field(min_length=1, max_length=1000)
    channel: str | None = Field(None, description="limit to one channel account (id or external id)")
    team: str | None = Field(None, description="team slug to set")
    priority: Priority | None = None
    required_skills: list[SkillRequirement] = Field(default_factory=list)
    position: int | None = Field(None, ge=1, description="where to insert (default: last)")


class RoutingRuleList(Wire):
    rules: list[RoutingRulePublic]
    next_cursor: str | None = None


class RuleMove(Input):
    position: int = Field(ge=1)


class RuleTest(Input):
    text: str = Field(max_length=20000)
    channel: str | None = None


class RuleTestResult(Wire):
    matched: bool
    rule: RoutingRulePublic | None = None
    sets: dict[str, Any] = Field(default_factory=dict)


class RoutingDecisionPublic(Wire):
    id: Id
    conversation_id: Id
    strategy: str
    rule_id: Id | None = None
    team_id: Id | None = None
    winner_id: Id | None = None
    candidates: list[dict[str, Any]] = Field(default_factory=list)
    reason: str
    created_at: datetime


class RoutingDecisionList(Wire):
    decisions: list[RoutingDecisionPublic]
    next_cursor: str | None = None


class SkillPublic(Wire):
    user_id: Id
    skill: str
    proficiency: int


class SkillList(Wire):
    skills: list[SkillPublic]
    next_cursor: str | None = None


class SkillsSet(Input):
    skills: dict[str, int] = Field(description="skill -> proficiency 1..5")


class CustomerBlockPublic(Wire):
    id: Id
    customer_id: Id
    customer_name: str | None = None
    conversation_id: Id | None = Field(None, description="the conversation whose message tripped the limit")
    conversation_number: int | None = None
    kind: str = Field(description="`messages`: a block; `flag_only`: over the limit, nothing blocked")
    reason: str
    starts_at: datetime = Field(description="customer time of the first held message")
    until: datetime
    held_count: int
    notified: bool
    created_at: datetime
    lifted_at: datetime | None = None


class CustomerBlockList(Wire):
    blocks: list[CustomerBlockPublic]
    next_cursor: str | None = None
