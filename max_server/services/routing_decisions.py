"""Routing decisions: why a conversation went where it went, or why it still waits.

Every assignment is recorded with its candidates and scores; a waiting conversation gets a
``waiting_for_skills`` or ``no_agent_available`` record only when its reason changes, so
``max routing explain`` can say why it waits while passes every few seconds add nothing.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from max_server.domain import routing as rules
from max_server.domain.routing import Candidate, Choice
from max_server.models import Conversation, RoutingDecision

# A conversation a pass left waiting: its required skills, whether they may be relaxed, and the
# choice when it was scored (None when nobody had room: scored only if recorded).
Waiting = tuple[Conversation, list[dict[str, Any]], bool, Choice | None]


def note(
    session: Session, conversation: Conversation, strategy: str, reason: str, now: datetime, **fields: Any
) -> RoutingDecision:
    """A decision without candidates (triage, requeue)."""
    decision = RoutingDecision(
        conversation_id=conversation.id,  # type: ignore[arg-type]
        strategy=strategy,
        team_id=conversation.team_id,
        candidates=[],
        reason=reason,
        created_at=now,
        **fields,
    )
    session.add(decision)
    return decision


def record(session: Session, conversation: Conversation, choice: Choice, now: datetime) -> RoutingDecision:
    decision = RoutingDecision(
        conversation_id=conversation.id,  # type: ignore[arg-type]
        strategy=choice.strategy,
        team_id=conversation.team_id,
        winner_id=choice.winner.user_id if choice.winner else None,
        candidates=choice.scored,
        reason=choice.reason,
        created_at=now,
    )
    session.add(decision)
    return decision


def record_waits(session: Session, pool: list[Candidate], waiting: list[Waiting], now: datetime) -> None:
    """Records why each conversation waits, when that differs from its last decision."""
    if not waiting:
        return
    last = last_decisions(session, [c.id for c, *_ in waiting if c.id is not None])
    reasons: dict[tuple[str, bool], tuple[str, str]] = {}  # nobody has room: same needs, same reason
    for conversation, required, may_relax, choice in waiting:
        if choice is not None:
            reason = (choice.strategy, choice.reason)
        else:
            key = (json.dumps(required, sort_keys=True), may_relax)
            if key not in reasons:
                reasons[key] = rules.waiting_reason(pool, required, may_relax=may_relax)
            reason = reasons[key]
        if last.get(conversation.id or 0) != reason:
            record(session, conversation, choice or rules.choose(pool, required, may_relax=may_relax), now)


def last_decisions(session: Session, conversation_ids: list[int]) -> dict[int, tuple[str, str]]:
    """Each conversation's latest decision as (strategy, reason), in one query."""
    if not conversation_ids:
        return {}
    latest = (
        select(func.max(RoutingDecision.id))
        .where(col(RoutingDecision.conversation_id).in_(conversation_ids))
        .group_by(col(RoutingDecision.conversation_id))
    )
    rows = session.execute(
        select(RoutingDecision.conversation_id, RoutingDecision.strategy, RoutingDecision.reason).where(
            col(RoutingDecision.id).in_(latest)
        )
    ).all()
    return {conversation_id: (strategy, reason) for conversation_id, strategy, reason in rows}


def decisions(session: Session, conversation_id: int) -> list[RoutingDecision]:
    return list(
        session.exec(
            select(RoutingDecision)
            .where(RoutingDecision.conversation_id == conversation_id)
            .order_by(col(RoutingDecision.id))
        )
    )


def explain(decision: RoutingDecision) -> dict[str, Any]:
    return {
        "id": str(decision.id),
        "conversation_id": str(decision.conversation_id),
        "strategy": decision.strategy,
        "rule_id": str(decision.rule_id) if decision.rule_id else None,
        "team_id": str(decision.team_id) if decision.team_id else None,
        "winner_id": str(decision.winner_id) if decision.winner_id else None,
        "candidates": decision.candidates,
        "reason": decision.reason,
        "created_at": decision.created_at,
    }
