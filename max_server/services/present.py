"""Rows to wire models (``schemas``), loading related rows in bulk (never one query per row).

Events carry their subject "as the API shows it", so services and routers both present through
here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, col, select

from max_server import clock
from max_server.models import (
    ChannelAccount,
    Conversation,
    Customer,
    CustomerIdentity,
    MediaFile,
    Message,
    Team,
    User,
)
from max_server.schemas import (
    ChannelAccountPublic,
    ConversationPublic,
    MediaRef,
    MessagePublic,
    Ref,
    TeamPublic,
    TeamRef,
    UserPublic,
)
from max_server.schemas.core import CustomerRef, IdentityRef
from max_server.schemas.customers import LinkPublic

WHATSAPP_WINDOW = timedelta(hours=24)
# Types whose messages may carry files (WhatsApp's media types; Chat App attachments use the same).
MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})


def user(row: User) -> UserPublic:
    return UserPublic.model_validate(row)


def team(row: Team, member_count: int = 0) -> TeamPublic:
    return TeamPublic.model_validate(row).model_copy(update={"member_count": member_count})


def window_expires_at(channel: str, conversation: Conversation) -> datetime | None:
    """When WhatsApp's 24 h customer-service window closes (None: no window on this channel)."""
    if channel != "whatsapp":
        return None
    last = conversation.last_customer_message_at
    if last is None:
        return None
    if conversation.window_closed_at is not None and conversation.window_closed_at >= last:
        return conversation.window_closed_at
    return last + WHATSAPP_WINDOW


def window_open(channel: str, conversation: Conversation, now: datetime) -> bool:
    if channel != "whatsapp":
        return True
    expires = window_expires_at(channel, conversation)
    return expires is not None and now < expires


def conversations(
    session: Session,
    rows: Sequence[Conversation],
    known_identities: Mapping[int, list[IdentityRef]] | None = None,
) -> list[ConversationPublic]:
    """``known_identities``: customers' identities the caller holds (ingest: what resolve read)."""
    if not rows:
        return []
    now = clock.now()
    customers = _by_id(session, Customer, {r.customer_id for r in rows})
    identities = dict(known_identities or {})
    missing = {r.customer_id for r in rows} - identities.keys()
    if missing:
        identities.update(_identities_for(session, missing))
    teams = _by_id(session, Team, {r.team_id for r in rows if r.team_id})
    users = _by_id(session, User, {r.assignee_id for r in rows if r.assignee_id})
    accounts = _by_id(session, ChannelAccount, {r.channel_account_id for r in rows})
    out = []
    for row in rows:
        customer = customers[row.customer_id]
        team_row = teams.get(row.team_id) if row.team_id else None
        assignee = users.get(row.assignee_id) if row.assignee_id else None
        channel = accounts[row.channel_account_id].kind
        out.append(
            ConversationPublic.model_validate(
                {
                    **row.model_dump(),
                    "customer": CustomerRef(
                        id=customer.id, name=customer.name, identities=identities.get(customer.id, [])
                    ),
                    "team": TeamRef.model_validate(team_row) if team_row else None,
                    "assignee": Ref(id=assignee.id, name=assignee.name) if assignee else None,
                    "channel": channel,
                    "window_open": window_open(channel, row, now),
                    "window_expires_at": window_expires_at(channel, row),
                }
            )
        )
    return out


def _identities_for(session: Session, customer_ids: set[int]) -> dict[int, list[IdentityRef]]:
    """Each customer's channel identities, in one query (events carry them: receivers act on them)."""
    found: dict[int, list[IdentityRef]] = {}
    rows = session.exec(
        select(CustomerIdentity)
        .where(col(CustomerIdentity.customer_id).in_(customer_ids))
        .order_by(col(CustomerIdentity.id))
    )
    for row in rows:
        found.setdefault(row.customer_id, []).append(
            IdentityRef(channel=row.channel, external_id=row.external_id)
        )
    return found


def conversation(
    session: Session, row: Conversation, known_identities: Mapping[int, list[IdentityRef]] | None = None
) -> ConversationPublic:
    return conversations(session, [row], known_identities)[0]


# What a message or customer event adds so a receiver can act without calling back (DESIGN §7 and
# issue 9): who the conversation is with, where it stands, whose it is.
EVENT_CONVERSATION_FIELDS = frozenset(
    {"id", "number", "status", "priority", "channel", "team", "assignee", "customer"}
)


def conversation_brief(shown: ConversationPublic) -> dict[str, Any]:
    """The small ``conversation`` object of message events (customer with identities included)."""
    return shown.model_dump(mode="json", include=set(EVENT_CONVERSATION_FIELDS))


def message_event(
    session: Session, row: Message, conversation_row: Conversation, shown: ConversationPublic | None = None
) -> dict[str, Any]:
    """``message.created`` and ``message.status_updated`` data: the message as the API shows it
    plus ``conversation`` (:func:`conversation_brief`; pass ``shown`` when it is at hand)."""
    data = message(session, row).model_dump(mode="json")
    data["conversation"] = conversation_brief(shown or conversation(session, conversation_row))
    return data


def customer_refs(session: Session, ids: Sequence[int]) -> dict[int, CustomerRef]:
    """Customers as events show them: id, name and channel identities, in two queries."""
    customers = _by_id(session, Customer, set(ids))
    identities = _identities_for(session, set(customers))
    return {
        cid: CustomerRef(id=row.id, name=row.name, identities=identities.get(cid, []))
        for cid, row in customers.items()
    }


def link_event(session: Session, link: LinkPublic) -> dict[str, Any]:
    """``customer.linked`` and ``customer.unlinked`` data: the link as the API shows it plus
    ``primary`` and ``secondary``, the customers as they are now with their identities (the
    person objects erasure knows how to empty: ``scrub.person_objects``)."""
    data = link.model_dump(mode="json")
    primary, secondary = int(link.primary_customer_id), int(link.secondary_customer_id)
    refs = customer_refs(session, [primary, secondary])
    for key, customer_id in (("primary", primary), ("secondary", secondary)):
        found = refs.get(customer_id)
        data[key] = found.model_dump(mode="json") if found is not None else None
    return data


def messages(session: Session, rows: Sequence[Message]) -> list[MessagePublic]:
    if not rows:
        return []
    senders = _by_id(session, User, {r.sender_user_id for r in rows if r.sender_user_id})
    # Only messages of a media type (or with attachments) can have media lines.
    media = _media_for(session, [r.id for r in rows if r.id is not None and r.type in MEDIA_TYPES])
    out = []
    for row in rows:
        sender = senders.get(row.sender_user_id) if row.sender_user_id else None
        out.append(
            MessagePublic.model_validate(
                {
                    **row.model_dump(),
                    "sender": Ref(id=sender.id, name=sender.name) if sender else None,
                    "media": media.get(row.id, []),  # type: ignore[arg-type]
                }
            )
        )
    return out


def message(session: Session, row: Message) -> MessagePublic:
    return messages(session, [row])[0]


def _media_for(session: Session, message_ids: list[int]) -> dict[int, list[MediaRef]]:
    """Media lines per message, in one query."""
    if not message_ids:
        return {}
    found: dict[int, list[MediaRef]] = {}
    rows = session.exec(
        select(MediaFile).where(col(MediaFile.message_id).in_(message_ids)).order_by(col(MediaFile.id))
    )
    for row in rows:
        found.setdefault(row.message_id, []).append(MediaRef.model_validate(row))
    return found


def channel_accounts(session: Session, rows: Sequence[ChannelAccount]) -> list[ChannelAccountPublic]:
    teams = _by_id(session, Team, {r.default_team_id for r in rows if r.default_team_id})
    return [
        ChannelAccountPublic.model_validate(
            {
                **row.model_dump(),
                "default_team": TeamRef.model_validate(teams[row.default_team_id])
                if row.default_team_id in teams
                else None,
            }
        )
        for row in rows
    ]


def _by_id(session: Session, model: type, ids: set[int | None]) -> dict[int, Any]:
    """Rows by id: those the session already holds come from its identity map (ingest has the
    customer and the channel account in hand), the rest in one query."""
    found: dict[int, Any] = {}
    missing = set()
    for ident in ids:
        if ident is None:
            continue
        held = session.identity_map.get(identity_key(model, ident))
        if held is not None:
            found[ident] = held
        else:
            missing.add(ident)
    if missing:
        rows: list[Any] = list(session.exec(select(model).where(col(model.id).in_(missing))))  # type: ignore[attr-defined]
        found.update((row.id, row) for row in rows)
    return found
