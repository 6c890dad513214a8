"""Customers as the reader may see them: search, one customer, lookup by identity, and link
suggestions.

Visibility (DESIGN §5): a user sees the customers of the conversations they may see; admins see
all. A customer linked into another is seen through the one it was linked into (its
conversations moved there).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, exists, false, func, or_, true
from sqlmodel import Session, col, select

from max_server.access import Actor, visible_filter
from max_server.domain.phones import digits_of, looks_like_phone, phone_match_keys, to_e164
from max_server.errors import not_found
from max_server.models import Conversation, Customer, CustomerIdentity, CustomerTag
from max_server.schemas import CustomerPublic, IdentityPublic, LinkSuggestion, SuggestionReason
from max_server.services.pagination import clamp_limit

MAX_CHAIN = 32  # links are refused when they would form a cycle; this only guards bad data
MAX_SUGGESTIONS = 50  # one page: a number shared by more people than this is no sign of one person


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def visible_clause(actor: Actor) -> ColumnElement[bool]:
    """SQL: the customer has a conversation the actor may see (always true for admins)."""
    if actor.is_admin:
        return true()
    if not actor.teams and actor.user_id is None:
        return false()
    return exists().where(
        col(Conversation.customer_id) == Customer.id,
        visible_filter(actor, Conversation.team_id, Conversation.assignee_id),
    )


def follow(session: Session, customer: Customer) -> Customer:
    """The customer, or the active one it was (transitively) linked into."""
    hops = 0
    while customer.merged_into_id is not None and hops < MAX_CHAIN:
        target = session.get(Customer, customer.merged_into_id)
        if target is None:
            break
        customer, hops = target, hops + 1
    return customer


def can_see(session: Session, actor: Actor, customer: Customer) -> bool:
    if actor.is_admin:
        return True
    target = follow(session, customer)
    query = select(Customer.id).where(Customer.id == target.id, visible_clause(actor))
    return session.exec(query).first() is not None


def get_visible(session: Session, actor: Actor, customer_id: int) -> Customer:
    """The customer, or 404 when it does not exist *or* the actor may not see it."""
    customer = session.get(Customer, customer_id)
    if customer is None or not can_see(session, actor, customer):
        raise not_found("customer", customer_id)
    return customer


def present(session: Session, rows: Sequence[Customer]) -> list[CustomerPublic]:
    """Customers with their identities and tags, in two queries whatever the page size."""
    ids = [row.id for row in rows if row.id is not None]
    if not ids:
        return []
    identities: dict[int, list[IdentityPublic]] = {}
    for identity in session.exec(
        select(CustomerIdentity)
        .where(col(CustomerIdentity.customer_id).in_(ids))
        .order_by(col(CustomerIdentity.id))
    ):
        identities.setdefault(identity.customer_id, []).append(IdentityPublic.model_validate(identity))
    tags: dict[int, list[str]] = {}
    for customer_id, tag in session.exec(
        select(CustomerTag.customer_id, CustomerTag.tag).where(col(CustomerTag.customer_id).in_(ids))
    ):
        tags.setdefault(customer_id, []).append(tag)
    return [
        CustomerPublic.model_validate(
            {
                **row.model_dump(),
                "identities": identities.get(row.id, []),  # type: ignore[arg-type]
                "tags": sorted(tags.get(row.id, [])),  # type: ignore[arg-type]
            }
        )
        for row in rows
    ]


def present_one(session: Session, row: Customer) -> CustomerPublic:
    return present(session, [row])[0]


def _phone_keys(query: str) -> set[str]:
    e164 = to_e164(query) or "+" + digits_of(query)
    return phone_match_keys(e164)


def matching(text: str) -> ColumnElement[bool]:
    """SQL: the customer's name, email, phone (normalised: any written form, and Mexico's and
    Argentina's legacy mobile forms) or one of its channel identities matches ``text``
    (case-insensitive; also used by the conversation search)."""
    pattern = f"%{escape_like(text.lower())}%"
    identity_match = [
        func.lower(CustomerIdentity.external_id).like(pattern, escape="\\"),
        func.lower(CustomerIdentity.display_name).like(pattern, escape="\\"),
    ]
    matches: list[ColumnElement[bool]] = [
        func.lower(Customer.name).like(pattern, escape="\\"),
        func.lower(Customer.email).like(pattern, escape="\\"),
    ]
    if looks_like_phone(text):
        keys = _phone_keys(text)
        digits = digits_of(text)
        matches += [
            col(Customer.phone_e164).in_(keys),
            col(Customer.phone_e164).like(f"%{digits}%"),
        ]
        identity_match += [
            col(CustomerIdentity.external_id).in_({k.lstrip("+") for k in keys} | keys),
            col(CustomerIdentity.external_id).like(f"%{digits}%"),
        ]
    matches.append(exists().where(col(CustomerIdentity.customer_id) == Customer.id, or_(*identity_match)))
    return or_(*matches)


def search(
    session: Session,
    actor: Actor,
    q: str | None = None,
    *,
    include_inactive: bool = False,
    before_id: int | None = None,
    limit: int | None = None,
) -> tuple[list[Customer], int | None]:
    """Newest first. ``q`` matches name, email, phone (normalised: any written form, and
    Mexico's/Argentina's legacy mobile forms) and channel identities; without it, everyone the
    actor may see."""
    size = clamp_limit(limit)
    query = select(Customer).where(visible_clause(actor))
    if not include_inactive:
        query = query.where(col(Customer.is_active).is_(True))
    text = (q or "").strip()
    if text:
        query = query.where(matching(text))
    if before_id is not None:
        query = query.where(col(Customer.id) < before_id)
    rows = list(session.exec(query.order_by(col(Customer.id).desc()).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1].id if more and rows else None)


def by_identity(session: Session, actor: Actor, channel: str, external_id: str) -> Customer:
    """The (active) customer behind a channel identity, for other systems. A WhatsApp phone
    may be given in any written form."""
    keys = [external_id]
    if channel == "whatsapp" and looks_like_phone(external_id):
        keys += sorted(k.lstrip("+") for k in _phone_keys(external_id))
    identity = session.exec(
        select(CustomerIdentity)
        .where(CustomerIdentity.channel == channel, col(CustomerIdentity.external_id).in_(keys))
        .order_by(col(CustomerIdentity.id))
    ).first()
    if identity is None:
        raise not_found("customer", f"with {channel} identity {external_id}")
    customer = session.get(Customer, identity.customer_id)
    assert customer is not None
    customer = follow(session, customer)
    if not can_see(session, actor, customer):
        raise not_found("customer", f"with {channel} identity {external_id}")
    return customer


def phone_forms(phone_e164: str | None, whatsapp_ids: Sequence[str]) -> set[str]:
    """Every E.164 form of a phone and of WhatsApp numbers (legacy mobile forms included)."""
    phones = {phone_e164} if phone_e164 else set()
    phones |= {e for e in (to_e164(i) for i in whatsapp_ids if i.isdigit()) if e}
    return set().union(*(phone_match_keys(p) for p in phones)) if phones else set()


def phones_of(session: Session, customer: Customer) -> set[str]:
    whatsapp_ids = session.exec(
        select(CustomerIdentity.external_id).where(
            CustomerIdentity.customer_id == customer.id, CustomerIdentity.channel == "whatsapp"
        )
    ).all()
    return phone_forms(customer.phone_e164, whatsapp_ids)


def suggestions(
    session: Session, actor: Actor, customer_id: int, limit: int = MAX_SUGGESTIONS
) -> list[LinkSuggestion]:
    """Active customers sharing a normalised phone or an email with this one, with the reasons
    (the first ``limit`` by id: more people sharing one number are not a suggestion any more)."""
    customer = follow(session, get_visible(session, actor, customer_id))
    phones = phones_of(session, customer)
    email = (customer.email or "").strip().lower()
    matches: list[ColumnElement[bool]] = []
    if phones:
        matches.append(col(Customer.phone_e164).in_(phones))
        matches.append(
            exists().where(
                col(CustomerIdentity.customer_id) == Customer.id,
                col(CustomerIdentity.channel) == "whatsapp",
                col(CustomerIdentity.external_id).in_({p.lstrip("+") for p in phones}),
            )
        )
    if email:
        matches.append(func.lower(Customer.email) == email)
    if not matches:
        return []
    candidates = list(
        session.exec(
            select(Customer)
            .where(
                Customer.id != customer.id,
                col(Customer.is_active).is_(True),
                visible_clause(actor),
                or_(*matches),
            )
            .order_by(col(Customer.id))
            .limit(limit)
        )
    )
    found = []
    for candidate, public in zip(candidates, present(session, candidates), strict=True):
        own = {candidate.phone_e164} | {
            f"+{i.external_id}" for i in public.identities if i.channel == "whatsapp"
        }
        theirs = phone_forms(
            candidate.phone_e164, [i.external_id for i in public.identities if i.channel == "whatsapp"]
        )
        reasons = [
            SuggestionReason(kind="phone", value=phone) for phone in sorted(phones & theirs) if phone in own
        ]
        if email and (candidate.email or "").strip().lower() == email:
            reasons.append(SuggestionReason(kind="email", value=email))
        found.append(LinkSuggestion(customer=public, reasons=reasons))
    return found
