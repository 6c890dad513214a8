"""The identity-link journal: what a link records so its undo is exact, and how links are shown.

``identity_links.moved`` holds the ids that moved (identities, conversations, transactions,
tickets), the conversations closed as duplicates with their full state before, and the highest
conversation id at link time (conversations above it were opened after the link).
``primary_changes`` maps each primary field the link filled to ``{"before", "after"}``;
``secondary_snapshot`` is both customers as they were (``{"primary": …, "secondary": …}``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, or_, true
from sqlmodel import Session, col, select

from max_server.access import Actor, visible_filter
from max_server.domain.phones import phone_match_keys, to_e164
from max_server.models import Conversation, Customer, CustomerIdentity, CustomerTag, IdentityLink, User
from max_server.schemas import LinkMoved, LinkPublic, Ref
from max_server.services import customers as customer_service
from max_server.services import events
from max_server.services.pagination import clamp_limit

FIELDS = ("name", "email", "phone_e164")
# A conversation's state that closing it as a duplicate changes (and its undo restores).
STATE = (
    "status",
    "assignee_id",
    "assigned_at",
    "queued_at",
    "closed_at",
    "close_reason",
    "sla_next_check_at",
    "frt_due_at",
    "resolution_due_at",
    "frt_warned_at",
    "resolution_warned_at",
    "escalated_at",
    "cycle",
    "updated_at",
)
_TIMES = frozenset(f for f in STATE if f.endswith("_at"))


def encode_state(conversation: Conversation) -> dict[str, Any]:
    state: dict[str, Any] = {"id": conversation.id}
    for field in STATE:
        value = getattr(conversation, field)
        state[field] = value.isoformat() if isinstance(value, datetime) else value
    return state


def decode_state(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        field: (datetime.fromisoformat(entry[field]) if field in _TIMES and entry[field] else entry[field])
        for field in STATE
        if field in entry
    }


def _customer_state(session: Session, customer: Customer) -> dict[str, Any]:
    identities = session.exec(
        select(CustomerIdentity)
        .where(CustomerIdentity.customer_id == customer.id)
        .order_by(col(CustomerIdentity.id))
    )
    tags = session.exec(
        select(CustomerTag.tag).where(CustomerTag.customer_id == customer.id).order_by(col(CustomerTag.tag))
    )
    return {
        "id": customer.id,
        **{field: getattr(customer, field) for field in FIELDS},
        "is_active": customer.is_active,
        "merged_into_id": customer.merged_into_id,
        "identities": [
            {"id": i.id, "channel": i.channel, "external_id": i.external_id, "display_name": i.display_name}
            for i in identities
        ],
        "tags": list(tags),
    }


def snapshot(session: Session, primary: Customer, secondary: Customer) -> dict[str, Any]:
    """Both customers as they are before the link (fields, identities, tags)."""
    return {"primary": _customer_state(session, primary), "secondary": _customer_state(session, secondary)}


def renumbered_phones(session: Session, previous: dict[str, Any], identity_ids: list[int]) -> dict[str, str]:
    """Old phone (in each of its forms) -> new phone for the returning WhatsApp identities whose
    customer changed number while linked: the number follows the identity, so it goes back with
    it. Matched by :func:`phone_match_keys`, as the number change matched the customer's phone."""
    before = {
        i["id"]: i["external_id"] for i in previous.get("identities", []) if i.get("channel") == "whatsapp"
    }
    moves: dict[str, str] = {}
    for identity in session.exec(select(CustomerIdentity).where(col(CustomerIdentity.id).in_(identity_ids))):
        old = before.get(identity.id)
        if identity.channel == "whatsapp" and old and old != identity.external_id:
            old_phone, new_phone = to_e164(old), to_e164(identity.external_id)
            if old_phone and new_phone:
                moves |= dict.fromkeys(phone_match_keys(old_phone), new_phone)
    return moves


def audience(
    session: Session, customer_ids: Iterable[int], users: Iterable[int | None] = ()
) -> dict[str, Any]:
    """Who hears about a link: the teams of the customers' conversations, their assignees, and
    whoever acted (admins always do)."""
    ids = list(customer_ids)
    rows = session.exec(
        select(Conversation.team_id, Conversation.assignee_id)
        .where(col(Conversation.customer_id).in_(ids))
        .distinct()
    ).all()
    return events.audience(
        teams=[team for team, _ in rows], users=[*users, *(assignee for _, assignee in rows)]
    )


def present_links(session: Session, rows: Sequence[IdentityLink]) -> list[LinkPublic]:
    user_ids = {r.linked_by_id for r in rows} | {r.unlinked_by_id for r in rows}
    wanted = {u for u in user_ids if u is not None}
    users = {u.id: u for u in session.exec(select(User).where(col(User.id).in_(wanted)))} if wanted else {}

    def ref(user_id: int | None) -> Ref | None:
        user = users.get(user_id) if user_id is not None else None
        return Ref(id=str(user.id), name=user.name) if user is not None else None

    out = []
    for row in rows:
        moved = row.moved or {}
        out.append(
            LinkPublic(
                link_id=str(row.id),
                primary_customer_id=str(row.primary_customer_id),
                secondary_customer_id=str(row.secondary_customer_id),
                linked_by=ref(row.linked_by_id),
                created_at=row.created_at,
                moved=LinkMoved(
                    identities=len(moved.get("identities", [])),
                    conversations=len(moved.get("conversations", [])),
                    transactions=len(moved.get("transactions", [])),
                    tickets=len(moved.get("tickets", [])),
                ),
                fields_filled=sorted(row.primary_changes or {}),
                tags_added=list(row.tags_added or []),
                closed_duplicates=[str(c["id"]) for c in moved.get("closed_duplicates", [])],
                unlinked_at=row.unlinked_at,
                unlinked_by=ref(row.unlinked_by_id),
                not_reopened=[str(i) for i in moved.get("not_reopened", [])],
            )
        )
    return out


def present_link(session: Session, row: IdentityLink) -> LinkPublic:
    return present_links(session, [row])[0]


def _visible_link(actor: Actor) -> ColumnElement[bool]:
    if actor.is_admin:
        return true()
    rule = visible_filter(actor, Conversation.team_id, Conversation.assignee_id)
    return or_(
        exists().where(col(Conversation.customer_id) == IdentityLink.primary_customer_id, rule),
        exists().where(col(Conversation.customer_id) == IdentityLink.secondary_customer_id, rule),
    )


def list_links(
    session: Session,
    actor: Actor,
    customer_id: int | None = None,
    *,
    before_id: int | None = None,
    limit: int | None = None,
) -> tuple[list[IdentityLink], int | None]:
    """Newest first: the links of one customer (as primary or secondary), or all the actor may see."""
    size = clamp_limit(limit)
    query = select(IdentityLink)
    if customer_id is not None:
        customer_service.get_visible(session, actor, customer_id)
        query = query.where(
            or_(
                col(IdentityLink.primary_customer_id) == customer_id,
                col(IdentityLink.secondary_customer_id) == customer_id,
            )
        )
    else:
        query = query.where(_visible_link(actor))
    if before_id is not None:
        query = query.where(col(IdentityLink.id) < before_id)
    rows = list(session.exec(query.order_by(col(IdentityLink.id).desc()).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1].id if more and rows else None)
