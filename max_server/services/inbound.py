"""Ingest of one customer message from any channel, inside the caller's transaction.

Steps (DESIGN §6): skip a message whose channel id is known; find or create the customer from
the identity; find the open conversation, reopen a recently closed one, or open a new one; store
the message (customer time clamped to arrival, never in the future); move
``last_customer_message_at`` forward only; add media rows and jobs; write the events.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, event, text
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, col, select

from max_server.db import is_postgres, upsert_statements
from max_server.domain.text import storable
from max_server.models import ChannelAccount, Conversation, Customer, MediaFile, Message, PendingStatus
from max_server.schemas.core import IdentityRef
from max_server.services import conversation_rows, events, identities, present
from max_server.settings import Settings

PREVIEW = 140
_LOCKS_KEY = "max_customer_locks"  # session.info: customers locked by this transaction
_M = Message.__table__  # type: ignore[attr-defined]
# Hot-path statements, built once (building one costs more than running it) and run with
# parameter dictionaries.
_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_MESSAGE_ID = select(Message.id).where(
    Message.channel == bindparam("channel"), Message.channel_message_id == bindparam("wamid")
)
# The stored row comes back whole (RETURNING) as the session's object: no second read.
_INSERT_MESSAGE = upsert_statements(
    _M,
    lambda insert: select(Message).from_statement(
        insert.on_conflict_do_nothing(index_elements=["channel", "channel_message_id"]).returning(*_M.c)
    ),
)


@dataclass
class MediaSpec:
    media_type: str
    channel_media_id: str | None = None
    source_url: str | None = None
    mime_type: str | None = None
    filename: str | None = None
    sha256: str | None = None


@dataclass
class Inbound:
    """One customer message, normalised from whatever channel it came on."""

    channel: str
    account: ChannelAccount
    channel_message_id: str
    identity_keys: list[str]
    type: str
    text: str | None
    payload: dict[str, Any]
    sent_at: datetime | None
    display_name: str | None = None
    phone_e164: str | None = None
    email: str | None = None
    reply_to: str | None = None
    flags: list[str] = field(default_factory=list)
    media: list[MediaSpec] = field(default_factory=list)
    # Its strings are known storable already (the WhatsApp webhook makes its body so whole).
    storable: bool = False


@dataclass
class Ingested:
    message: Message
    conversation: Conversation
    conversation_created: bool
    reopened: bool
    # First contact: the customer was created by this transaction, so no other transaction can
    # see it yet. It has no history to count or lock.
    customer_created: bool = False
    # The customer's identities as events show them (None: not known without a query).
    identities: list[IdentityRef] | None = None
    # Held so it stays in the session's identity map (a weak one) for the hooks' presenting.
    customer: Customer | None = None


def _storable(inbound: Inbound) -> Inbound:
    """The message with NUL characters replaced everywhere (PostgreSQL refuses them)."""
    cleaned = {
        name: storable(value)
        for name, value in vars(inbound).items()
        if name not in ("account", "media", "sent_at", "storable")
    }
    media = [MediaSpec(**storable(vars(spec))) for spec in inbound.media]
    return Inbound(**cleaned, account=inbound.account, media=media, sent_at=inbound.sent_at, storable=True)


def lock_customer(session: Session, customer_id: int) -> None:
    """Serializes one customer's messages across processes (SQLite: its single writer). An
    advisory lock, not a row lock: foreign-key checks take share locks on customer rows, and
    upgrading those would deadlock. Taken once per transaction (the hooks ask again)."""
    if not is_postgres(session):
        return
    held: set[int] = session.info.setdefault(_LOCKS_KEY, set())
    if customer_id not in held:
        session.execute(_LOCK, {"k": zlib.crc32(b"max:customer:%d" % customer_id)})
        held.add(customer_id)


@event.listens_for(Session, "after_soft_rollback")
def _locks_lost(session: Session, transaction: SessionTransaction) -> None:
    # A rollback, even to a savepoint, may release locks taken since: ask again next time.
    session.info.pop(_LOCKS_KEY, None)


@event.listens_for(Session, "after_transaction_end")
def _locks_released(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # transaction-scoped locks end with the transaction
        session.info.pop(_LOCKS_KEY, None)


def known(session: Session, channel: str, channel_message_id: str) -> bool:
    return _message_id(session, channel, channel_message_id) is not None


def _message_id(session: Session, channel: str, channel_message_id: str) -> int | None:
    return session.execute(_MESSAGE_ID, {"channel": channel, "wamid": channel_message_id}).scalar()


def ingest(session: Session, inbound: Inbound, *, now: datetime, reopen_window: int) -> Ingested | None:
    """Stores one inbound message; None when it was already stored (a redelivery)."""
    if not inbound.storable:
        inbound = _storable(inbound)
    if known(session, inbound.channel, inbound.channel_message_id):
        return None
    customer_time = min(inbound.sent_at or now, now)
    resolved = identities.resolve(
        session,
        inbound.channel,
        inbound.identity_keys,
        display_name=inbound.display_name,
        phone_e164=inbound.phone_e164,
        email=inbound.email,
    )
    assert resolved.customer.id is not None
    assert inbound.account.id is not None
    first_contact = resolved.created
    if not first_contact:
        # One customer's messages are stored one at a time (rate limits count them exactly), and
        # always customer row first, then conversation: the same lock order in every transaction.
        # A first contact's customer exists only in this transaction: a concurrent delivery from
        # the same person waits on our identity row (its unique index), then locks.
        lock_customer(session, resolved.customer.id)
    conversation, created, reopened = _conversation_for(
        session,
        resolved.customer.id,
        inbound,
        resolved.identity.id,
        customer_time,
        now,
        reopen_window,
        first_contact,
    )
    assert conversation.id is not None
    reply_to_id = None
    if inbound.reply_to:
        reply_to_id = _message_id(session, inbound.channel, inbound.reply_to)
    message = session.scalars(
        _INSERT_MESSAGE[session.get_bind().dialect.name],
        {
            "conversation_id": conversation.id,
            "direction": "inbound",
            "sender_type": "system" if inbound.type == "system" else "customer",
            "channel": inbound.channel,
            "channel_message_id": inbound.channel_message_id,
            "type": inbound.type,
            "content_text": inbound.text,
            "payload": inbound.payload,
            "customer_time": customer_time,
            "received_at": now,
            "delivery_status": "delivered",
            "flags": sorted(set(inbound.flags)),
            "reply_to_id": reply_to_id,
            "created_at": now,
        },
    ).first()
    if message is None:  # a concurrent redelivery won the race
        return None
    if not created:  # a new one was inserted touched (see _open)
        _touch(conversation, customer_time, inbound, resolved.identity.id, now)
        session.add(conversation)
    for spec in inbound.media:
        _add_media(session, message, conversation, spec)
    session.flush()
    return Ingested(
        message,
        conversation,
        created,
        reopened,
        customer_created=first_contact,
        identities=resolved.identities,
        customer=resolved.customer,
    )


def _conversation_for(
    session: Session,
    customer_id: int,
    inbound: Inbound,
    identity_id: int | None,
    customer_time: datetime,
    now: datetime,
    reopen_window: int,
    first_contact: bool,
) -> tuple[Conversation, bool, bool]:
    account = inbound.account
    assert account.id is not None
    if first_contact:  # a customer this transaction created has no conversations yet
        return (*_open(session, customer_id, inbound, identity_id, customer_time, now), False)
    found = conversation_rows.find_open(session, customer_id, account.id)
    if found is not None:
        return found, False, False
    closed = conversation_rows.last_closed(session, customer_id, account.id)
    if closed is not None and closed.closed_at is not None and customer_time < closed.closed_at:
        # Written before the agent closed it (a late redelivery): it belongs to that
        # conversation, and must not reopen what was just closed.
        return closed, False, False
    if (
        closed is not None
        and closed.closed_at is not None
        and now - closed.closed_at <= timedelta(seconds=reopen_window)
    ):
        if conversation_rows.reopen(session, closed, customer_time, now):
            return closed, False, True
        found = conversation_rows.find_open(session, customer_id, account.id)
        if found is not None:
            return found, False, False
    return (*_open(session, customer_id, inbound, identity_id, customer_time, now), False)


def _open(
    session: Session,
    customer_id: int,
    inbound: Inbound,
    identity_id: int | None,
    customer_time: datetime,
    now: datetime,
) -> tuple[Conversation, bool]:
    """A new conversation, inserted with what :func:`_touch` would set for this message (so
    storing the message updates nothing)."""
    assert inbound.account.id is not None
    return conversation_rows.open_new(
        session,
        customer_id=customer_id,
        account_id=inbound.account.id,
        team_id=inbound.account.default_team_id,
        identity_id=identity_id,
        first_message_at=customer_time,
        now=now,
        last_customer_message_at=None if inbound.type == "system" else customer_time,
        last_message_at=customer_time,
        last_message_preview=preview(inbound.text, inbound.type),
    )


def _touch(
    conversation: Conversation,
    customer_time: datetime,
    inbound: Inbound,
    identity_id: int | None,
    now: datetime,
) -> None:
    # Meta redelivers and reorders: the latest customer time only ever moves forward. System
    # messages (a number change) are not the customer writing: they open no 24 h window.
    if inbound.type != "system" and (
        conversation.last_customer_message_at is None or customer_time > conversation.last_customer_message_at
    ):
        conversation.last_customer_message_at = customer_time
        conversation.identity_id = identity_id
    if conversation.last_message_at is None or customer_time >= conversation.last_message_at:
        conversation.last_message_at = customer_time
        conversation.last_message_preview = preview(inbound.text, inbound.type)
    conversation.updated_at = now


def preview(text: str | None, type_: str) -> str:
    if text:
        line = " ".join(text.split())
        return line if len(line) <= PREVIEW else line[: PREVIEW - 1] + "…"
    return f"[{type_}]"


def _add_media(session: Session, message: Message, conversation: Conversation, spec: MediaSpec) -> None:
    assert message.id is not None
    assert conversation.id is not None
    session.add(
        MediaFile(
            message_id=message.id,
            conversation_id=conversation.id,
            channel_media_id=spec.channel_media_id,
            source_url=spec.source_url,
            media_type=spec.media_type,
            mime_type=spec.mime_type,
            filename=spec.filename,
            expected_sha256=spec.sha256,
            status="pending",
        )
    )


def pending_statuses_for(session: Session, channel: str, channel_message_id: str) -> list[PendingStatus]:
    return list(
        session.exec(
            select(PendingStatus)
            .where(PendingStatus.channel == channel, PendingStatus.channel_message_id == channel_message_id)
            .order_by(col(PendingStatus.id))
        )
    )


MessageHook = Callable[[Session, Ingested, Settings, datetime], None]
_message_hooks: list[tuple[int, str, MessageHook]] = []

# Hook order: triage (team, priority, skills), the rate limit (it flags the message), then the
# message's events (so they reach the right people), then media, assignment and automatic replies.
ORDER_TRIAGE, ORDER_RATE_LIMITS, ORDER_EVENTS = 5, 10, 20
ORDER_MEDIA, ORDER_ROUTING, ORDER_AFTER_HOURS = 30, 50, 60


def on_message(order: int) -> Callable[[MessageHook], MessageHook]:
    """Registers ``hook(session, ingested, settings, now)``, run after each new customer message
    is stored, in the same transaction, in ``order`` (see the ORDER_* constants). A hook that must
    not act on messages held by the rate limit checks ``"rate_limited" in ingested.message.flags``."""

    def register(hook: MessageHook) -> MessageHook:
        key = f"{hook.__module__}.{hook.__qualname__}"
        if all(existing != key for _, existing, _ in _message_hooks):
            _message_hooks.append((order, key, hook))
            _message_hooks.sort(key=lambda entry: entry[0])
        return hook

    return register


def after_ingest(session: Session, stored: Ingested, settings: Settings, now: datetime) -> None:
    """Runs the hooks in order; the stored message's own events are one of them (order 20), so
    the rate limit (order 10) decides who hears about it first."""
    for _, _, hook in list(_message_hooks):
        hook(session, stored, settings, now)


@on_message(ORDER_EVENTS)
def emit_ingest_events(session: Session, stored: Ingested, settings: Settings, now: datetime) -> None:
    """``conversation.created``/``reopened`` (with the change hooks) and ``message.created``.
    A message held by the rate limit goes only to the team's supervisors (collapsed there)."""
    conversation = stored.conversation
    if stored.conversation_created:
        conversation_rows.changed(session, conversation, {"created", "team_id", "priority", "status"}, now)
    elif stored.reopened:
        conversation_rows.changed(session, conversation, {"cycle", "status", "closed_at"}, now)
    if "rate_limited" in stored.message.flags:
        from max_server.services.notifications import team_supervisors

        audience = events.audience(users=team_supervisors(session, conversation.team_id))
    else:
        audience = conversation_rows.audience(conversation)
    session.flush()
    known = {conversation.customer_id: stored.identities} if stored.identities is not None else None
    shown = present.conversation(session, conversation, known_identities=known)
    rows = []
    if stored.conversation_created or stored.reopened:
        kind = "conversation.created" if stored.conversation_created else "conversation.reopened"
        rows.append(events.event_row(kind, shown, to=audience))
    data = present.message_event(session, stored.message, conversation, shown)
    rows.append(events.event_row("message.created", data, to=audience))
    events.emit_rows(session, rows)
