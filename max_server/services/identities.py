"""Finding (or creating) the customer behind a channel identity, safely under concurrency.

Identities are unique per (channel, external id). Two deliveries racing to create the same new
customer both try to insert the identity; the loser's insert waits for the winner, finds the
conflict, and reads the winner's row. Customers merged into another are followed to the one that
remains.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, insert
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from max_server import clock
from max_server.db import dialect_insert, upsert_statements
from max_server.domain.phones import phone_match_keys
from max_server.models import Customer, CustomerIdentity
from max_server.schemas.core import IdentityRef

_I = CustomerIdentity.__table__  # type: ignore[attr-defined]
_C = Customer.__table__  # type: ignore[attr-defined]
# Hot-path statements (every inbound message), built once and run with parameters.
_BY_KEY = select(CustomerIdentity).where(
    CustomerIdentity.channel == bindparam("channel"), CustomerIdentity.external_id == bindparam("key")
)
# The identities of the customer an identity belongs to now (none: it was erased). Read after the
# customer's lock, they are the ones events show (a link would need that customer's row).
_SIBLINGS = (
    select(CustomerIdentity.customer_id, CustomerIdentity.channel, CustomerIdentity.external_id)
    .where(
        CustomerIdentity.customer_id
        == select(CustomerIdentity.customer_id)
        .where(CustomerIdentity.id == bindparam("id"))
        .scalar_subquery()
    )
    .order_by(col(CustomerIdentity.id))
)
# FOR KEY SHARE (PostgreSQL; SQLite has one writer): a link of this customer in flight (it holds
# FOR UPDATE) finishes first, and we read what it committed.
_LOCKED_CUSTOMER = (
    select(Customer)
    .where(Customer.id == bindparam("id"))
    .with_for_update(read=True, key_share=True)
    .execution_options(populate_existing=True)
)
_INSERT_CUSTOMER = select(Customer).from_statement(insert(_C).returning(*_C.c))
# Rows come back whole (RETURNING) as the session's objects: no second read.
_INSERT_IDENTITY = upsert_statements(
    _I,
    lambda insert: select(CustomerIdentity).from_statement(
        insert.on_conflict_do_nothing(index_elements=["channel", "external_id"]).returning(*_I.c)
    ),
)


@dataclass
class Resolved:
    customer: Customer
    identity: CustomerIdentity
    created: bool
    # All the customer's identities, as events show them, when known without another query.
    identities: list[IdentityRef] | None = None


def find_identity(session: Session, channel: str, keys: list[str]) -> CustomerIdentity | None:
    for key in keys:
        found = session.scalars(_BY_KEY, {"channel": channel, "key": key}).first()
        if found is not None:
            return found
    return None


def _load_customer(session: Session, customer_id: int, lock: bool) -> Customer | None:
    if not lock:
        return session.get(Customer, customer_id)
    return session.scalars(_LOCKED_CUSTOMER, {"id": customer_id}).first()


def active_customer(session: Session, customer_id: int, *, lock: bool = False) -> Customer:
    """The customer, or the one it was merged into (following a chain, guarded against loops).
    With ``lock``, each row is key-share locked, so a concurrent link cannot deactivate the
    customer between this read and the caller's writes."""
    customer = _load_customer(session, customer_id, lock)
    assert customer is not None
    hops = 0
    while customer.merged_into_id is not None and not customer.is_active and hops < 16:
        target = _load_customer(session, customer.merged_into_id, lock)
        if target is None:
            break
        customer, hops = target, hops + 1
    return customer


def resolve(
    session: Session,
    channel: str,
    keys: list[str],
    *,
    display_name: str | None = None,
    phone_e164: str | None = None,
    email: str | None = None,
) -> Resolved:
    """The customer for an identity known by any of ``keys`` (the first is the primary key);
    creates customer and identities on first contact. Extra keys become identities too."""
    keys = [k for k in dict.fromkeys(keys) if k]
    found = find_identity(session, channel, keys)
    if found is None:
        customer = session.scalars(
            _INSERT_CUSTOMER,
            {
                "name": display_name,
                "email": email,
                "phone_e164": phone_e164,
                "is_active": True,
                "merged_into_id": None,
                "erased_at": None,
                "created_at": clock.now(),
            },
        ).one()
        inserted = session.scalars(
            _INSERT_IDENTITY[session.get_bind().dialect.name],
            {
                "customer_id": customer.id,
                "channel": channel,
                "external_id": keys[0],
                "display_name": display_name,
                "created_at": customer.created_at,
            },
        ).first()
        if inserted is not None:
            # First contact: customer and identity exist only in this transaction, so no link
            # can have moved or merged them (nothing to lock or follow), and the name is set.
            _attach_other_keys(session, channel, keys, inserted, customer)
            only = [IdentityRef(channel=channel, external_id=keys[0])] if len(keys) == 1 else None
            return Resolved(customer, inserted, created=True, identities=only)
        # Someone else created this identity meanwhile: use theirs, drop our customer.
        session.delete(customer)
        session.flush()
        found = find_identity(session, channel, keys)
        assert found is not None
    customer = active_customer(session, found.customer_id, lock=True)
    identities = None
    for _ in range(3):  # a link or its undo moved the identity while we waited: follow it
        owner = found.customer_id
        siblings = session.execute(_SIBLINGS, {"id": found.id}).all()
        current = siblings[0].customer_id if siblings else None
        if current is None:  # the customer was erased meanwhile: start a fresh one
            session.expunge(found)
            return resolve(
                session, channel, keys, display_name=display_name, phone_e164=phone_e164, email=email
            )
        if current == owner:
            identities = [IdentityRef(channel=row.channel, external_id=row.external_id) for row in siblings]
            break
        set_committed_value(found, "customer_id", current)
        customer = active_customer(session, current, lock=True)
    if found.customer_id != customer.id:
        found.customer_id = customer.id  # type: ignore[assignment]
        session.add(found)
        identities = None  # it joins the customer its own was merged into, and those are not known
    if display_name and found.display_name != display_name:
        found.display_name = display_name
        session.add(found)
    if display_name and not customer.name:
        customer.name = display_name
        session.add(customer)
    _attach_other_keys(session, channel, keys, found, customer)
    return Resolved(customer, found, created=False, identities=identities if len(keys) == 1 else None)


def _attach_other_keys(
    session: Session, channel: str, keys: list[str], found: CustomerIdentity, customer: Customer
) -> None:
    """A WhatsApp user known by phone (wa_id) and by business-scoped id (user_id) gets both."""
    assert customer.id is not None
    for key in keys:
        if key == found.external_id:
            continue
        session.execute(
            dialect_insert(session, _I)
            .values(
                customer_id=customer.id,
                channel=channel,
                external_id=key,
                display_name=found.display_name,
                created_at=found.created_at,
            )
            .on_conflict_do_nothing(index_elements=["channel", "external_id"])
        )


def move_identity(session: Session, channel: str, old_key: str, new_key: str) -> CustomerIdentity | None:
    """A WhatsApp user changed number: the identity follows, so later messages join the same
    customer. If the new number is already someone's identity, that one is left alone. The
    customer's phone follows only when it was the old number: a customer linked with this one
    keeps a phone of its own (and undo gives the new number back to the identity's customer)."""
    old = find_identity(session, channel, [old_key])
    if old is None:
        return None
    if find_identity(session, channel, [new_key]) is None:
        old.external_id = new_key
        session.add(old)
        customer = session.get(Customer, old.customer_id)
        if (
            customer is not None
            and new_key.isdigit()
            and customer.phone_e164 in phone_match_keys("+" + old_key)
        ):
            customer.phone_e164 = "+" + new_key
            session.add(customer)
    return old


def identities_of(session: Session, customer_id: int) -> list[CustomerIdentity]:
    return list(
        session.exec(
            select(CustomerIdentity)
            .where(CustomerIdentity.customer_id == customer_id)
            .order_by(col(CustomerIdentity.id))
        )
    )
