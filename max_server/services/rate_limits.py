"""Customer rate limits (seed §7, done right): exact sliding windows on the customer's clock
(``domain/ratelimit.py``), atomic across processes (the customer's row is locked while counting).

Over a limit, the message is stored and flagged ``rate_limited`` (a new conversation too), not
routed, shown only to supervisors; the customer is blocked for ``rate_limits.block_minutes`` and
the team's supervisors are notified once per block.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from max_server.access import Actor
from max_server.domain import ratelimit
from max_server.models import Conversation, Customer, CustomerBlock, RateEvent
from max_server.services import audit, events, notifications
from max_server.services.customers import get_visible, visible_clause
from max_server.services.inbound import Ingested, lock_customer
from max_server.settings import RateLimitSettings

MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)
FLAG = "rate_limited"


def _fits(session: Session, customer_id: int, kind: str, at: datetime, window: timedelta, limit: int) -> bool:
    """Whether one more accepted ``kind`` at ``at`` keeps every window within the limit."""
    nearby = session.exec(
        select(RateEvent.at).where(
            RateEvent.customer_id == customer_id,
            RateEvent.kind == kind,
            col(RateEvent.at) > at - window,
            col(RateEvent.at) < at + window,
        )
    ).all()
    return ratelimit.fits(nearby, at, window, limit)


def active_block(session: Session, customer_id: int, at: datetime) -> CustomerBlock | None:
    return session.exec(
        select(CustomerBlock)
        .where(
            CustomerBlock.customer_id == customer_id,
            col(CustomerBlock.lifted_at).is_(None),
            col(CustomerBlock.until) > at,
        )
        .order_by(col(CustomerBlock.id).desc())
    ).first()


def gate(session: Session, stored: Ingested, limits: RateLimitSettings, now: datetime) -> bool:
    """Counts the message (and a new conversation) and flags it when over a limit. Returns True
    when the message is held."""
    conversation, message = stored.conversation, stored.message
    customer_id = conversation.customer_id
    at = message.customer_time or now
    lock_customer(session, customer_id)  # held since ingest; counting is exact across processes
    block = active_block(session, customer_id, at)
    reasons = []
    if block is None:
        if not _fits(session, customer_id, "message", at, MINUTE, limits.messages_per_minute):
            reasons.append(f"more than {limits.messages_per_minute} messages in a minute")
        new = stored.conversation_created
        if new and not _fits(session, customer_id, "conversation", at, HOUR, limits.conversations_per_hour):
            reasons.append(f"more than {limits.conversations_per_hour} new conversations in an hour")
        if not reasons:  # only accepted messages count: the windows hold what agents received
            session.add(RateEvent(customer_id=customer_id, kind="message", at=at, created_at=now))
            if new:
                session.add(RateEvent(customer_id=customer_id, kind="conversation", at=at, created_at=now))
            return False
    message.flags = sorted({*message.flags, FLAG})
    session.add(message)
    if stored.conversation_created:
        conversation.rate_limited = True
        session.add(conversation)
    if block is None:
        block = CustomerBlock(
            customer_id=customer_id,
            kind="messages",
            reason="; ".join(reasons),
            until=at + timedelta(minutes=limits.block_minutes),
            created_at=now,
        )
        session.add(block)
    block.held_count += 1
    session.add(block)
    if not block.notified:
        block.notified = True
        _notify(session, conversation, block)
    return True


def _notify(session: Session, conversation: Conversation, block: CustomerBlock) -> None:
    customer = session.get(Customer, conversation.customer_id)
    name = (customer.name if customer else None) or f"customer {conversation.customer_id}"
    supervisors = notifications.team_supervisors(session, conversation.team_id)
    data = {
        "customer_id": str(conversation.customer_id),
        "customer_name": name,
        "conversation_id": str(conversation.id),
        "number": conversation.number,
        "reason": block.reason,
        "until": block.until.isoformat(),
    }
    notifications.notify(
        session,
        supervisors,
        "customer.rate_limited",
        f"{name} is held by the rate limit ({block.reason}) until {block.until:%H:%M} UTC",
        data,
    )
    events.emit(session, "customer.rate_limited", data, to=events.audience(users=supervisors))


def blocks(
    session: Session, at: datetime, include_past: bool = False, actor: Actor | None = None
) -> list[CustomerBlock]:
    """Blocks (of the customers ``actor`` may see: another team's are not even listed)."""
    query = select(CustomerBlock).order_by(col(CustomerBlock.id).desc())
    if actor is not None and not actor.is_admin:
        query = query.join(Customer, col(Customer.id) == CustomerBlock.customer_id).where(
            visible_clause(actor)
        )
    if not include_past:
        query = query.where(col(CustomerBlock.lifted_at).is_(None), col(CustomerBlock.until) > at)
    return list(session.exec(query.limit(500)))


def unblock(session: Session, actor: Actor, customer_id: int, now: datetime) -> int:
    """Lifts the customer's blocks and releases their held conversations to routing; 404 for a
    customer the actor may not see, as for one that does not exist."""
    get_visible(session, actor, customer_id)
    lifted = session.execute(
        update(CustomerBlock)
        .where(col(CustomerBlock.customer_id) == customer_id, col(CustomerBlock.lifted_at).is_(None))
        .values(lifted_at=now, lifted_by_id=actor.user_id)
    ).rowcount  # type: ignore[attr-defined]
    held = session.exec(
        select(Conversation).where(
            Conversation.customer_id == customer_id,
            col(Conversation.rate_limited).is_(True),
            Conversation.status != "closed",
        )
    ).all()
    from max_server.services import conversation_rows

    for conversation in held:
        conversation.rate_limited = False
        session.add(conversation)
        conversation_rows.changed(session, conversation, {"status"}, now)
        conversation_rows.emit(session, "conversation.updated", conversation)
    audit.record(session, actor, "customer.unblocked", "customer", customer_id, {"blocks": int(lifted)})
    session.commit()
    return int(lifted)


def release_if_clear(session: Session, stored: Ingested) -> bool:
    """A held conversation whose customer writes again within the limits is released."""
    if not stored.conversation.rate_limited or FLAG in stored.message.flags:
        return False
    stored.conversation.rate_limited = False
    session.add(stored.conversation)
    return True


def prune(session: Session, before: datetime, batch: int = 5000) -> int:
    victims = select(RateEvent.id).where(col(RateEvent.created_at) < before).limit(batch)
    result = session.execute(delete(RateEvent).where(col(RateEvent.id).in_(victims.scalar_subquery())))
    return int(result.rowcount)  # type: ignore[attr-defined]
