"""Customer rate limits (seed §7, done right): exact sliding windows on the customer's clock
(``domain/ratelimit.py``), atomic across processes (the customer's row is locked while counting).

Over a limit, the message is stored and flagged ``rate_limited`` (a new conversation too), not
routed, shown only to supervisors, and its SLA clocks do not run; the customer is blocked for
``rate_limits.block_minutes`` and the team's supervisors are notified once per block. With
``block_minutes = 0`` nothing is blocked: each message is judged by the windows alone, and the
supervisors hear once per window that tripped (a ``flag_only`` record spans it).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    and_,
    bindparam,
    cast,
    delete,
    insert,
    literal,
    null,
    or_,
    union_all,
    update,
)
from sqlmodel import Session, col, select

from max_server.access import Actor
from max_server.domain import ratelimit
from max_server.models import Conversation, Customer, CustomerBlock, RateEvent
from max_server.models.base import UTCDateTime
from max_server.schemas import CustomerBlockPublic
from max_server.services import audit, conversation_rows, events, notifications
from max_server.services.customers import get_visible, visible_clause
from max_server.services.inbound import Ingested, lock_customer
from max_server.services.pagination import clamp_limit
from max_server.settings import RateLimitSettings

MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)
_RATE_EVENTS = RateEvent.__table__  # type: ignore[attr-defined]
FLAG = "rate_limited"
BLOCK, FLAG_ONLY = "messages", "flag_only"  # CustomerBlock.kind


def _near(kind: str) -> ColumnElement[bool]:
    return and_(
        col(RateEvent.kind) == kind,
        col(RateEvent.at) > bindparam(f"{kind}_from"),
        col(RateEvent.at) < bindparam(f"{kind}_to"),
    )


_COVERING = (
    select(CustomerBlock)
    .where(
        CustomerBlock.customer_id == bindparam("customer_id"),
        CustomerBlock.kind == bindparam("kind"),
        col(CustomerBlock.lifted_at).is_(None),
        col(CustomerBlock.starts_at) <= bindparam("starts_by"),
        col(CustomerBlock.until) > bindparam("at"),
    )
    .order_by(col(CustomerBlock.id).desc())
)
_COUNT = insert(_RATE_EVENTS)
# Every inbound message is counted: its reads are one statement, built once (building one costs
# more than running it). The accepted times of each kind within its window on either side of
# the message's time (only those can change whether one more fits), for a message alone or with
# a new conversation; and the id of a block holding it, if any (then the times do not matter).
_HOLDING = _COVERING.with_only_columns(col(CustomerBlock.id)).limit(1).subquery()  # kind=BLOCK, starts_by=at
_GATE_READS: dict[tuple[str, ...], Any] = {
    kinds: union_all(
        select(RateEvent.kind, RateEvent.at, cast(null(), BigInteger).label("block_id")).where(
            RateEvent.customer_id == bindparam("customer_id"), or_(*(_near(kind) for kind in kinds))
        ),
        select(literal("block"), cast(null(), UTCDateTime), _HOLDING.c.id),
    )
    for kinds in (("message",), ("message", "conversation"))
}


def _gate_reads(
    session: Session, customer_id: int, at: datetime, windows: dict[str, timedelta]
) -> tuple[CustomerBlock | None, dict[str, list[datetime]]]:
    """The block holding a message written at ``at`` (a message written before a block began is
    not held by it, whatever order Meta delivers them in), and the accepted times near ``at`` of
    each kind in ``windows``."""
    nearby: dict[str, list[datetime]] = {kind: [] for kind in windows}
    params: dict[str, Any] = {"customer_id": customer_id, "kind": BLOCK, "starts_by": at, "at": at}
    for kind, window in windows.items():
        params[f"{kind}_from"], params[f"{kind}_to"] = at - window, at + window
    block = None
    for kind, when, block_id in session.execute(_GATE_READS[tuple(windows)], params):
        if block_id is not None:
            block = session.get(CustomerBlock, block_id)
        else:
            nearby[kind].append(when)
    return block, nearby


def _covering(
    session: Session, customer_id: int, kind: str, at: datetime, lead: timedelta
) -> CustomerBlock | None:
    """The unlifted record of ``kind`` whose span ``[starts_at - lead, until)`` holds customer
    time ``at``."""
    return session.scalars(
        _COVERING, {"customer_id": customer_id, "kind": kind, "starts_by": at + lead, "at": at}
    ).first()


def gate(session: Session, stored: Ingested, limits: RateLimitSettings, now: datetime) -> bool:
    """Counts the message (and a new conversation) and flags it when over a limit. Returns True
    when the message is held."""
    conversation, message = stored.conversation, stored.message
    customer_id = conversation.customer_id
    at = message.customer_time or now
    new = stored.conversation_created
    windows = {"message": MINUTE, **({"conversation": HOUR} if new else {})}
    nearby: dict[str, list[datetime]]
    if stored.customer_created:
        # First contact: the customer exists only in this transaction, so it has no blocks and
        # no counted messages yet, and no other transaction can count for it meanwhile.
        block, nearby = None, {kind: [] for kind in windows}
    else:
        lock_customer(session, customer_id)  # held since ingest; counting is exact across processes
        block, nearby = _gate_reads(session, customer_id, at, windows)
    reasons, window = [], MINUTE
    if block is None:
        if not ratelimit.fits(nearby["message"], at, MINUTE, limits.messages_per_minute):
            reasons.append(f"more than {limits.messages_per_minute} messages in a minute")
        if new and not ratelimit.fits(nearby["conversation"], at, HOUR, limits.conversations_per_hour):
            reasons.append(f"more than {limits.conversations_per_hour} new conversations in an hour")
            window = HOUR
        if not reasons:  # only accepted messages count: the windows hold what agents received
            session.execute(  # Core: a row nobody reads back needs no ORM object
                _COUNT,
                [{"customer_id": customer_id, "kind": kind, "at": at, "created_at": now} for kind in windows],
            )
            return False
    message.flags = sorted({*message.flags, FLAG})
    session.add(message)
    if stored.conversation_created:
        conversation.rate_limited = True  # the SLA hook leaves it without deadlines
        session.add(conversation)
    kind = BLOCK if limits.block_minutes else FLAG_ONLY
    if block is None:
        # Over a limit just before a block (or flag-only record) began: the same burst, delivered
        # out of order. Held by the window, counted in that block, no second notification.
        block = _covering(session, customer_id, kind, at, lead=window)
    if block is None:
        block = CustomerBlock(
            customer_id=customer_id,
            conversation_id=conversation.id,
            kind=kind,
            reason="; ".join(reasons),
            starts_at=at,
            until=at + (timedelta(minutes=limits.block_minutes) if limits.block_minutes else window),
            created_at=now,
        )
    block.held_count += 1
    session.add(block)
    if not block.notified:
        block.notified = True
        _notify(session, conversation, block)
    return True


def present_blocks(session: Session, rows: list[CustomerBlock]) -> list[CustomerBlockPublic]:
    """Blocks as the API shows them, with their customers' names and conversations' numbers."""
    if not rows:
        return []
    customer_ids = {b.customer_id for b in rows}
    names = dict(
        session.exec(select(Customer.id, Customer.name).where(col(Customer.id).in_(customer_ids))).all()
    )
    conversation_ids = {b.conversation_id for b in rows if b.conversation_id is not None}
    numbers = (
        dict(
            session.exec(
                select(Conversation.id, Conversation.number).where(col(Conversation.id).in_(conversation_ids))
            ).all()
        )
        if conversation_ids
        else {}
    )
    return [
        CustomerBlockPublic.model_validate(
            {
                **b.model_dump(),
                "customer_name": names.get(b.customer_id),
                "conversation_number": numbers.get(b.conversation_id) if b.conversation_id else None,
            }
        )
        for b in rows
    ]


def _notify(session: Session, conversation: Conversation, block: CustomerBlock) -> None:
    """The team's supervisors (admins when it has no team) hear once per block; the event and the
    notification carry the block as the API shows it."""
    session.flush()
    shown = present_blocks(session, [block])[0]
    name = shown.customer_name or f"customer {conversation.customer_id}"
    supervisors = notifications.team_supervisors(session, conversation.team_id)
    data = shown.model_dump(mode="json")
    held = "held by the rate limit" if block.kind == BLOCK else "over the rate limit (flagged only)"
    notifications.notify(
        session,
        supervisors,
        "customer.rate_limited",
        f"{name} is {held} ({block.reason}) until {block.until:%H:%M} UTC",
        data,
    )
    events.emit(session, "customer.rate_limited", shown, to=events.audience(users=supervisors))


def blocks(
    session: Session,
    at: datetime,
    include_past: bool = False,
    actor: Actor | None = None,
    *,
    before_id: int | None = None,
    limit: int | None = None,
) -> tuple[list[CustomerBlock], int | None]:
    """Blocks, newest first (of the customers ``actor`` may see: another team's are not even
    listed). Returns a page and the id to continue before (or None)."""
    size = clamp_limit(limit)
    query = select(CustomerBlock).order_by(col(CustomerBlock.id).desc())
    if actor is not None and not actor.is_admin:
        query = query.join(Customer, col(Customer.id) == CustomerBlock.customer_id).where(
            visible_clause(actor)
        )
    if not include_past:
        query = query.where(col(CustomerBlock.lifted_at).is_(None), col(CustomerBlock.until) > at)
    if before_id is not None:
        query = query.where(col(CustomerBlock.id) < before_id)
    rows = list(session.exec(query.limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1].id if more and rows else None)


def _release(session: Session, conversation: Conversation, now: datetime) -> None:
    """Held no longer: its SLA clocks start now (held time is not counted against the team) and
    routing takes it, at its original place in the queue."""
    conversation.rate_limited = False
    conversation.cycle_started_at = now
    conversation.updated_at = now
    session.add(conversation)
    conversation_rows.changed(session, conversation, {"rate_limited"}, now)
    conversation_rows.emit(session, "conversation.updated", conversation)  # agents see it now


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
    for conversation in held:
        _release(session, conversation, now)
    audit.record(session, actor, "customer.unblocked", "customer", customer_id, {"blocks": int(lifted)})
    session.commit()
    return int(lifted)


def release_if_clear(session: Session, stored: Ingested, now: datetime) -> bool:
    """A held conversation whose customer writes again within the limits is released."""
    if not stored.conversation.rate_limited or FLAG in stored.message.flags:
        return False
    _release(session, stored.conversation, now)
    return True


def prune(session: Session, before: datetime, batch: int = 5000) -> int:
    victims = select(RateEvent.id).where(col(RateEvent.created_at) < before).limit(batch)
    result = session.execute(delete(RateEvent).where(col(RateEvent.id).in_(victims.scalar_subquery())))
    return int(result.rowcount)  # type: ignore[attr-defined]
