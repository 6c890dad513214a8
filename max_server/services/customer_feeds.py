"""What other systems and agents add to a customer's context: transactions and tickets
(idempotent upserts keyed by the other system's id) and tags.

A customer id that was linked into another is followed to the active customer: other systems
keep the ids they knew, and what they send belongs with the person as MAX knows them now.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlmodel import Session, col, delete, select

from max_server import clock
from max_server.access import Actor
from max_server.db import dialect_insert
from max_server.errors import Conflict, Unprocessable, not_found
from max_server.models import Customer, CustomerTag, Ticket, Transaction
from max_server.schemas import TicketPublic, TicketPut, TransactionPublic, TransactionPut
from max_server.schemas.customers import UpsertOutcome
from max_server.services import audit, events
from max_server.services.customers import follow, get_visible
from max_server.services.link_journal import audience

_T = CustomerTag.__table__  # type: ignore[attr-defined]

# ISO 4217 minor units that are not 2 (everything else has cents).
_EXPONENTS = {
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}


MAX_MINOR = 10**17


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def to_minor(amount: Decimal, currency: str) -> int:
    """Exact conversion to minor units; refuses more decimals than the currency has."""
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise Unprocessable(
            f"{currency} has {exponent(currency)} decimal places; {amount} has more",
            code="invalid_amount",
        )
    if abs(scaled) > MAX_MINOR:
        raise Unprocessable(f"{amount} {currency} is out of range", code="invalid_amount")
    return int(scaled)


def to_major(amount_minor: int, currency: str) -> float:
    return float(Decimal(amount_minor).scaleb(-exponent(currency)))


def _target(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id, with_for_update={"read": True, "key_share": True})
    if customer is None:
        raise not_found("customer", customer_id)
    customer = follow(session, customer)
    if customer.erased_at is not None:
        raise Conflict(f"customer {customer.id} was erased", code="customer_erased")
    return customer


def present_transaction(row: Transaction) -> TransactionPublic:
    return TransactionPublic.model_validate(
        {
            **row.model_dump(),
            "transaction_id": row.external_id,
            "amount": to_major(row.amount_minor, row.currency),
        }
    )


def present_ticket(row: Ticket) -> TicketPublic:
    return TicketPublic.model_validate({**row.model_dump(), "ticket_id": row.external_id})


def _owned_elsewhere(
    session: Session, owner_id: int, customer: Customer, kind: str, external_id: str
) -> None:
    if owner_id == customer.id:
        return
    owner = session.get(Customer, owner_id)
    if owner is not None and follow(session, owner).id == customer.id:
        return  # it belonged to a customer since linked into this one
    raise Conflict(
        f"{kind} {external_id} belongs to customer {owner_id}",
        code=f"{kind}_belongs_to_another_customer",
        details={"customer_id": str(owner_id)},
    )


def _upsert(
    session: Session,
    model: type[Transaction] | type[Ticket],
    customer: Customer,
    external_id: str,
    fields: dict[str, Any],
) -> tuple[Any, UpsertOutcome]:
    """Insert-or-update keyed by ``external_id``; concurrent first PUTs of the same id both end
    on one row (the unique key settles it). Returns the row and whether it was created, updated
    or left unchanged (the same body again touches nothing, not even ``updated_at``)."""
    table = model.__table__  # type: ignore[union-attr]
    now = clock.now()
    inserted = session.execute(
        dialect_insert(session, table)
        .values(customer_id=customer.id, external_id=external_id, created_at=now, updated_at=now, **fields)
        .on_conflict_do_nothing(index_elements=["external_id"])
        .returning(table.c.id)
    ).scalar_one_or_none()
    row: Any = session.exec(
        select(model)
        .where(model.external_id == external_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if inserted is None:
        kind = "transaction" if model is Transaction else "ticket"
        _owned_elsewhere(session, int(row.customer_id), customer, kind, external_id)
        changed = {key: value for key, value in fields.items() if getattr(row, key) != value}
        for key, value in changed.items():
            setattr(row, key, value)
        if changed:
            row.updated_at = now
            session.add(row)
    session.commit()
    if inserted is not None:
        return row, "created"
    return row, "updated" if changed else "unchanged"


def put_transaction(
    session: Session, actor: Actor, customer_id: int, external_id: str, body: TransactionPut
) -> tuple[Transaction, UpsertOutcome]:
    """Creates or updates the transaction ``external_id``; returns it and what happened."""
    customer = _target(session, customer_id)
    amount_minor = (
        body.amount_minor
        if body.amount_minor is not None
        else to_minor(body.amount or Decimal(0), body.currency)
    )
    fields = {
        "amount_minor": amount_minor,
        "currency": body.currency,
        "status": body.status,
        "description": body.description,
        "occurred_at": body.occurred_at,
    }
    return _upsert(session, Transaction, customer, external_id, fields)


def put_ticket(
    session: Session, actor: Actor, customer_id: int, external_id: str, body: TicketPut
) -> tuple[Ticket, UpsertOutcome]:
    """Creates or updates the ticket ``external_id``; returns it and what happened."""
    customer = _target(session, customer_id)
    fields = {"subject": body.subject, "status": body.status, "url": body.url}
    return _upsert(session, Ticket, customer, external_id, fields)


def tags_of(session: Session, customer_id: int) -> list[str]:
    """Sorted in Python, not by the database's collation, so every answer orders tags alike."""
    return sorted(session.exec(select(CustomerTag.tag).where(CustomerTag.customer_id == customer_id)))


def add_tags(session: Session, actor: Actor, customer_id: int, tags: list[str]) -> list[str]:
    """Adds tags (those already there are kept once); returns the customer's tags."""
    customer = follow(session, get_visible(session, actor, customer_id))
    assert customer.id is not None
    if customer.erased_at is not None:
        raise Conflict(f"customer {customer.id} was erased", code="customer_erased")
    now = clock.now()
    before = tags_of(session, customer.id)
    for tag in tags:
        session.execute(
            dialect_insert(session, _T)
            .values(customer_id=customer.id, tag=tag, created_at=now)
            .on_conflict_do_nothing(index_elements=["customer_id", "tag"])
        )
    audit.record(session, actor, "customer.tagged", "customer", customer.id, {"tags": tags})
    _announce_tags(session, actor, customer.id, before)
    session.commit()
    return tags_of(session, customer.id)


def remove_tags(session: Session, actor: Actor, customer_id: int, tags: list[str]) -> list[str]:
    customer = follow(session, get_visible(session, actor, customer_id))
    assert customer.id is not None
    before = tags_of(session, customer.id)
    session.exec(
        delete(CustomerTag).where(col(CustomerTag.customer_id) == customer.id, col(CustomerTag.tag).in_(tags))
    )
    audit.record(session, actor, "customer.untagged", "customer", customer.id, {"tags": tags})
    _announce_tags(session, actor, customer.id, before)
    session.commit()
    return tags_of(session, customer.id)


def _announce_tags(session: Session, actor: Actor, customer_id: int, before: list[str]) -> None:
    """``customer.tagged`` (when the tags changed), so consoles showing the customer refresh. It
    names the customer only: tags can be personal data, and erasure must not find copies."""
    session.flush()
    if tags_of(session, customer_id) == before:
        return
    data = {"customer_id": str(customer_id)}
    events.emit(session, "customer.tagged", data, to=audience(session, [customer_id], [actor.user_id]))
