"""Opening, finding and reopening conversations; shared by ingest and the actions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import bindparam, func, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from max_server.db import upsert_statements
from max_server.models import Conversation
from max_server.services import events, present

OPEN = ("queued", "assigned")
_C = Conversation.__table__  # type: ignore[attr-defined]


# The human number (#123): a sequence on PostgreSQL, max + 1 under SQLite's one writer; computed
# inside the INSERT (one statement, not two).
_NUMBER = {
    "postgresql": func.nextval("conversation_number_seq"),
    "sqlite": select(func.coalesce(func.max(_C.c.number), 0) + 1).scalar_subquery(),
}
# Hot-path statements (every inbound message), built once and run with parameters.
_OPEN = select(Conversation).where(
    Conversation.customer_id == bindparam("customer_id"),
    Conversation.channel_account_id == bindparam("account_id"),
    col(Conversation.status).in_(OPEN),
)
_LAST_CLOSED = (
    select(Conversation)
    .where(
        Conversation.customer_id == bindparam("customer_id"),
        Conversation.channel_account_id == bindparam("account_id"),
        Conversation.status == "closed",
    )
    .order_by(col(Conversation.closed_at).desc(), col(Conversation.id).desc())
    .limit(1)
)
# Opens unless one is open already (the partial unique index settles races); the new row comes
# back whole (RETURNING) as the session's object: no second read.
_INSERT = {
    name: select(Conversation).from_statement(
        insert.values(number=_NUMBER[name])
        .on_conflict_do_nothing(
            index_elements=["customer_id", "channel_account_id"], index_where=text("status <> 'closed'")
        )
        .returning(*_C.c)
    )
    for name, insert in upsert_statements(_C, lambda insert: insert).items()
}


def find_open(session: Session, customer_id: int, account_id: int) -> Conversation | None:
    return session.scalars(_OPEN, {"customer_id": customer_id, "account_id": account_id}).first()


def last_closed(session: Session, customer_id: int, account_id: int) -> Conversation | None:
    return session.scalars(_LAST_CLOSED, {"customer_id": customer_id, "account_id": account_id}).first()


def open_new(
    session: Session,
    *,
    customer_id: int,
    account_id: int,
    team_id: int | None,
    identity_id: int | None,
    first_message_at: datetime,
    now: datetime,
    last_customer_message_at: datetime | None = None,
    last_message_at: datetime | None = None,
    last_message_preview: str | None = None,
) -> tuple[Conversation, bool]:
    """Opens a conversation unless one is open already (the partial unique index settles races).
    Returns (conversation, created)."""
    inserted = session.scalars(
        _INSERT[session.get_bind().dialect.name],
        {
            "customer_id": customer_id,
            "channel_account_id": account_id,
            "identity_id": identity_id,
            "team_id": team_id,
            "status": "queued",
            "priority": "normal",
            "required_skills": [],
            "first_message_at": first_message_at,
            "last_customer_message_at": last_customer_message_at,
            "last_message_at": last_message_at,
            "last_message_preview": last_message_preview,
            "cycle": 1,
            "cycle_started_at": first_message_at,
            "after_hours": False,
            "rate_limited": False,
            "queued_at": now,  # what ``changed(created)`` sets: the row needs no update for it
            "created_at": now,
            "updated_at": now,
        },
    ).first()
    if inserted is not None:
        return inserted, True
    existing = find_open(session, customer_id, account_id)
    assert existing is not None, "an open conversation conflicted but cannot be found"
    return existing, False


def reopen(session: Session, conversation: Conversation, at: datetime, now: datetime) -> bool:
    """Reopens a closed conversation as a new cycle. False if another is open meanwhile. An
    escalation belonged to the cycle it happened in: the new cycle gets back the priority the
    conversation had before it (unless someone chose another one since)."""
    restored = _priority_before_escalation(session, conversation)
    savepoint = session.begin_nested()
    try:
        conversation.priority = restored
        conversation.status = "assigned" if conversation.assignee_id else "queued"
        conversation.cycle += 1
        conversation.cycle_started_at = at
        conversation.closed_at = None
        conversation.close_reason = None
        conversation.first_response_at = None
        conversation.frt_due_at = None
        conversation.resolution_due_at = None
        conversation.sla_next_check_at = None
        conversation.frt_warned_at = None
        conversation.resolution_warned_at = None
        conversation.escalated_at = None
        conversation.updated_at = now
        session.add(conversation)
        session.flush()
        savepoint.commit()
    except IntegrityError:  # another conversation of this customer and account is open
        savepoint.rollback()
        session.refresh(conversation)
        return False
    return True


def _priority_before_escalation(session: Session, conversation: Conversation) -> str:
    if conversation.escalated_at is None or conversation.priority != "urgent":
        return conversation.priority
    # The SLA service records the priority each breach happened under (an escalation always
    # follows a breach); it registers its hooks on this module, hence the late import.
    from max_server.services.sla import governing_priorities

    assert conversation.id is not None
    return governing_priorities(session, [conversation])[conversation.id]


def audience(
    conversation: Conversation,
    extra_teams: tuple[int | None, ...] = (),
    extra_users: tuple[int | None, ...] = (),
) -> dict[str, object]:
    """Who hears about a conversation: its team, its assignee, and whoever just lost it."""
    return events.audience(
        teams=[conversation.team_id, *extra_teams], users=[conversation.assignee_id, *extra_users]
    )


def emit(
    session: Session,
    type_: str,
    conversation: Conversation,
    extra_teams: tuple[int | None, ...] = (),
    extra_users: tuple[int | None, ...] = (),
) -> None:
    """A ``conversation.*`` event carrying the conversation as the API shows it."""
    session.flush()
    events.emit(
        session,
        type_,
        present.conversation(session, conversation),
        to=audience(conversation, extra_teams, extra_users),
    )


# Changes other features follow -------------------------------------------------------------
ChangeHook = Callable[[Session, Conversation, frozenset[str], datetime], None]
_change_hooks: list[tuple[int, str, ChangeHook]] = []
TRACKED = frozenset(
    {
        "created",
        "team_id",
        "priority",
        "status",
        "assignee_id",
        "cycle",
        "first_response_at",
        "closed_at",
        "rate_limited",  # released from the customer rate limit (SLA clocks start, routing runs)
    }
)


def on_change(order: int = 50) -> Callable[[ChangeHook], ChangeHook]:
    """Registers ``hook(session, conversation, changed_fields, now)``, run in the same transaction
    whenever a service changes any of :data:`TRACKED` (``"created"`` for a new conversation). SLA
    deadlines and routing follow conversations this way."""

    def register(hook: ChangeHook) -> ChangeHook:
        key = f"{hook.__module__}.{hook.__qualname__}"
        if all(existing != key for _, existing, _ in _change_hooks):
            _change_hooks.append((order, key, hook))
            _change_hooks.sort(key=lambda entry: entry[0])
        return hook

    return register


def changed(
    session: Session, conversation: Conversation, fields: set[str] | frozenset[str], now: datetime
) -> None:
    """Services call this after changing tracked fields of ``conversation`` (before commit)."""
    relevant = frozenset(fields) & TRACKED
    if not relevant:
        return
    if ("status" in relevant or "created" in relevant) and conversation.status == "queued":
        conversation.queued_at = now  # routing measures waiting (and skills relaxation) from here
        session.add(conversation)
    for _, _, hook in list(_change_hooks):
        hook(session, conversation, relevant, now)
