"""Linking two customers (one person on several channels) in one transaction, and undoing it.

``link`` moves the secondary's identities, conversations, transactions and tickets to the
primary, adds the secondary's tags the primary lacks, fills the primary's empty fields (the
primary wins conflicts), and deactivates the secondary (``merged_into_id``). Everything it changed
is journaled in ``identity_links`` with a snapshot of both sides, so ``undo`` restores both
customers exactly (Chatwoot, Zendesk and HubSpot cannot undo a merge).

Concurrency: both customer rows are locked in id order (``SELECT … FOR UPDATE`` on PostgreSQL;
SQLite's single writer serialises) and every rule is checked after the locks, so two links racing
on the same customers cannot both succeed. Ingest takes a key-share lock on the customer it
writes for, so a message never lands on a customer that a link has just deactivated.

One open conversation per customer and channel account: when both customers have one open on
the same account, the secondary's is closed with reason ``duplicate`` (journaled; undo reopens it
unless another conversation of the secondary is open there by then).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from max_server import clock
from max_server.access import Actor
from max_server.errors import Conflict, Forbidden, Unprocessable, not_found
from max_server.models import (
    Conversation,
    Customer,
    CustomerIdentity,
    CustomerTag,
    IdentityLink,
    Ticket,
    Transaction,
)
from max_server.services import audit, conversation_rows, events, present
from max_server.services import customers as customer_service
from max_server.services.link_journal import (
    FIELDS,
    audience,
    decode_state,
    encode_state,
    present_link,
    renumbered_phones,
    snapshot,
)

OPEN = conversation_rows.OPEN
_CHUNK = 500


def lock_customers(session: Session, ids: list[int]) -> dict[int, Customer]:
    """Locks the customer rows in id order (one order for everyone: no deadlock between links)
    and reads their committed state."""
    found: dict[int, Customer] = {}
    for customer_id in sorted(set(ids)):
        row = session.exec(
            select(Customer)
            .where(Customer.id == customer_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()
        if row is None:
            raise not_found("customer", customer_id)
        found[customer_id] = row
    return found


def _chain(session: Session, customer: Customer) -> list[int]:
    """The ids a customer was (transitively) linked into."""
    chain: list[int] = []
    current = customer
    while current.merged_into_id is not None and len(chain) < customer_service.MAX_CHAIN:
        chain.append(current.merged_into_id)
        target = session.get(Customer, current.merged_into_id)
        if target is None:
            break
        current = target
    return chain


def _refuse(session: Session, primary: Customer, secondary: Customer) -> None:
    for row in (primary, secondary):
        if row.erased_at is not None:
            raise Conflict(f"customer {row.id} was erased", code="customer_erased")
    if secondary.id in _chain(session, primary):
        raise Conflict(
            f"customer {primary.id} was linked into customer {secondary.id}: linking {secondary.id} into "
            f"{primary.id} would form a cycle (undo that link instead)",
            code="link_cycle",
            details={"primary_customer_id": str(primary.id), "secondary_customer_id": str(secondary.id)},
        )
    if primary.id in _chain(session, secondary):
        raise Conflict(
            f"customer {secondary.id} is already linked into customer {primary.id}", code="already_linked"
        )
    for row in (primary, secondary):
        if not row.is_active:
            into = f" (it was linked into customer {row.merged_into_id})" if row.merged_into_id else ""
            raise Conflict(
                f"customer {row.id} is not active{into}",
                code="customer_inactive",
                details={
                    "customer_id": str(row.id),
                    "merged_into_id": str(row.merged_into_id) if row.merged_into_id else None,
                },
            )


def _ids(session: Session, model: Any, customer_id: int) -> list[int]:
    return list(session.exec(select(model.id).where(model.customer_id == customer_id).order_by(model.id)))


def _move(session: Session, model: Any, ids: list[int], from_id: int, to_id: int) -> None:
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        session.execute(
            update(model)
            .where(col(model.id).in_(chunk), model.customer_id == from_id)
            .values(customer_id=to_id)
            .execution_options(synchronize_session=False)
        )


def link(session: Session, actor: Actor, primary_id: int, secondary_id: int) -> IdentityLink:
    """Folds ``secondary_id`` into ``primary_id`` in one transaction (see the module's doc)."""
    if primary_id == secondary_id:
        raise Unprocessable("a customer cannot be linked to itself", code="cannot_link_to_itself")
    locked = lock_customers(session, [primary_id, secondary_id])
    primary, secondary = locked[primary_id], locked[secondary_id]
    for row in (primary, secondary):
        if not customer_service.can_see(session, actor, row):
            raise not_found("customer", row.id)
    _refuse(session, primary, secondary)
    assert primary.id is not None
    assert secondary.id is not None
    now = clock.now()
    watermark = int(session.exec(select(func.coalesce(func.max(Conversation.id), 0))).one() or 0)
    before = snapshot(session, primary, secondary)

    # The secondary's open conversations that would make two open ones on one account.
    primary_open = set(
        session.exec(
            select(Conversation.channel_account_id).where(
                Conversation.customer_id == primary.id, col(Conversation.status).in_(OPEN)
            )
        )
    )
    duplicates = [
        conversation
        for conversation in session.exec(
            select(Conversation)
            .where(Conversation.customer_id == secondary.id, col(Conversation.status).in_(OPEN))
            .with_for_update()
        )
        if conversation.channel_account_id in primary_open
    ]
    closed: list[dict[str, Any]] = []
    for conversation in duplicates:
        closed.append(encode_state(conversation))
        conversation.status = "closed"
        conversation.closed_at = now
        conversation.close_reason = "duplicate"
        conversation.sla_next_check_at = None
        conversation.updated_at = now
        session.add(conversation)
    session.flush()

    moved: dict[str, Any] = {
        "identities": _ids(session, CustomerIdentity, secondary.id),
        "conversations": _ids(session, Conversation, secondary.id),
        "transactions": _ids(session, Transaction, secondary.id),
        "tickets": _ids(session, Ticket, secondary.id),
        "closed_duplicates": closed,
        "conversation_watermark": watermark,
    }
    for model, key in (
        (CustomerIdentity, "identities"),
        (Conversation, "conversations"),
        (Transaction, "transactions"),
        (Ticket, "tickets"),
    ):
        _move(session, model, moved[key], secondary.id, primary.id)

    primary_tags = set(session.exec(select(CustomerTag.tag).where(CustomerTag.customer_id == primary.id)))
    tags_added = sorted(
        set(session.exec(select(CustomerTag.tag).where(CustomerTag.customer_id == secondary.id)))
        - primary_tags
    )
    for tag in tags_added:
        session.add(CustomerTag(customer_id=primary.id, tag=tag, created_at=now))

    changes: dict[str, Any] = {}
    for field in FIELDS:
        mine, theirs = getattr(primary, field), getattr(secondary, field)
        if not mine and theirs:
            changes[field] = {"before": mine, "after": theirs}
            setattr(primary, field, theirs)
    secondary.is_active = False
    secondary.merged_into_id = primary.id
    session.add(primary)
    session.add(secondary)
    journal = IdentityLink(
        primary_customer_id=primary.id,
        secondary_customer_id=secondary.id,
        linked_by_id=actor.user_id,
        moved=moved,
        primary_changes=changes,
        tags_added=tags_added,
        secondary_snapshot=before,
        created_at=now,
    )
    session.add(journal)
    session.flush()
    session.expire_all()  # conversations and identities moved in bulk

    for conversation in session.exec(
        select(Conversation).where(col(Conversation.id).in_([c["id"] for c in closed]))
    ):
        conversation_rows.changed(session, conversation, {"status", "closed_at"}, now)
        conversation_rows.emit(session, "conversation.closed", conversation)
    _announce_open(session, primary.id, moved["conversations"])
    public = present_link(session, journal)
    linked = present.link_event(session, public)
    events.emit(session, "customer.linked", linked, to=audience(session, [primary.id], [actor.user_id]))
    data = {"link_id": str(journal.id), **public.moved.model_dump(), "fields_filled": sorted(changes)}
    audit.record(
        session, actor, "customer.linked", "customer", primary.id, {**data, "secondary": str(secondary.id)}
    )
    audit.record(
        session, actor, "customer.linked_into", "customer", secondary.id, {**data, "primary": str(primary.id)}
    )
    session.commit()
    return journal


def _announce_open(session: Session, customer_id: int, conversation_ids: list[int]) -> None:
    """The open conversations among those that changed customer: queues show the new name."""
    for start in range(0, len(conversation_ids), _CHUNK):
        chunk = conversation_ids[start : start + _CHUNK]
        for conversation in session.exec(
            select(Conversation).where(
                col(Conversation.id).in_(chunk),
                Conversation.customer_id == customer_id,
                col(Conversation.status).in_(OPEN),
            )
        ):
            conversation_rows.emit(session, "conversation.updated", conversation)


def undo(session: Session, actor: Actor, link_id: int) -> IdentityLink:
    """Restores both customers exactly as they were before the link. Conversations opened after
    the link whose replies go to an identity that returns to the secondary go back with it."""
    found = session.get(IdentityLink, link_id)
    if found is None:
        raise not_found("link", link_id)
    locked = lock_customers(session, [found.primary_customer_id, found.secondary_customer_id])
    journal = session.exec(
        select(IdentityLink)
        .where(IdentityLink.id == link_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    primary, secondary = locked[journal.primary_customer_id], locked[journal.secondary_customer_id]
    assert primary.id is not None
    assert secondary.id is not None
    if not (
        customer_service.can_see(session, actor, primary)
        or customer_service.can_see(session, actor, secondary)
    ):
        raise not_found("link", link_id)
    if not (
        actor.at_least("supervisor") or (actor.user_id is not None and actor.user_id == journal.linked_by_id)
    ):
        raise Forbidden(
            "only whoever made the link, a supervisor or an admin may undo it", code="not_allowed"
        )
    if journal.unlinked_at is not None:
        raise Conflict(f"link {link_id} was already undone", code="link_already_undone")
    for row in (primary, secondary):
        if row.erased_at is not None:
            raise Conflict(f"customer {row.id} was erased; the link cannot be undone", code="customer_erased")
    if not primary.is_active or secondary.merged_into_id != primary.id:
        blocking = session.exec(
            select(IdentityLink.id).where(
                IdentityLink.secondary_customer_id == primary.id, col(IdentityLink.unlinked_at).is_(None)
            )
        ).first()
        raise Conflict(
            f"customer {primary.id} was since linked into customer {primary.merged_into_id}: undo link "
            f"{blocking} first",
            code="undo_blocked",
            details={"blocking_link_id": str(blocking) if blocking else None},
        )
    now = clock.now()
    moved = dict(journal.moved)
    identities = [
        i
        for i in session.exec(
            select(CustomerIdentity.id).where(
                col(CustomerIdentity.id).in_(moved.get("identities", [])),
                CustomerIdentity.customer_id == primary.id,
            )
        )
        if i is not None
    ]
    later = list(
        session.exec(
            select(Conversation.id).where(
                Conversation.customer_id == primary.id,
                col(Conversation.id) > int(moved.get("conversation_watermark", 0)),
                col(Conversation.identity_id).in_(identities),
            )
        )
    )
    back = sorted(set(moved.get("conversations", [])) | {i for i in later if i is not None})
    _move(session, CustomerIdentity, identities, primary.id, secondary.id)
    _move(session, Conversation, back, primary.id, secondary.id)
    _move(session, Transaction, list(moved.get("transactions", [])), primary.id, secondary.id)
    _move(session, Ticket, list(moved.get("tickets", [])), primary.id, secondary.id)
    session.flush()
    session.expire_all()
    not_reopened = _reopen_duplicates(session, secondary.id, moved.get("closed_duplicates", []), now)

    for tag_row in session.exec(
        select(CustomerTag).where(
            CustomerTag.customer_id == primary.id, col(CustomerTag.tag).in_(journal.tags_added)
        )
    ):
        session.delete(tag_row)
    previous = journal.secondary_snapshot.get("secondary", {})
    renumbered = renumbered_phones(session, previous, identities)
    for field, change in journal.primary_changes.items():
        if getattr(primary, field) in (change["after"], renumbered.get(change["after"])):
            setattr(primary, field, change["before"])
    for field in FIELDS:
        if field in previous:
            value = previous[field]
            setattr(secondary, field, renumbered.get(value, value) if field == "phone_e164" else value)
    secondary.is_active = True
    secondary.merged_into_id = None
    journal.unlinked_at = now
    journal.unlinked_by_id = actor.user_id
    journal.moved = {**moved, "returned_later": later, "not_reopened": not_reopened}
    session.add_all([primary, secondary, journal])
    session.flush()
    _announce_open(session, secondary.id, back)
    public = present_link(session, journal)
    events.emit(
        session,
        "customer.unlinked",
        present.link_event(session, public),
        to=audience(session, [primary.id, secondary.id], [actor.user_id, journal.linked_by_id]),
    )
    audit.record(
        session,
        actor,
        "customer.unlinked",
        "customer",
        primary.id,
        {"link_id": str(journal.id), "secondary": str(secondary.id), "not_reopened": not_reopened},
    )
    session.commit()
    return journal


def _reopen_duplicates(
    session: Session, secondary_id: int, entries: list[dict[str, Any]], now: datetime
) -> list[int]:
    """Restores the conversations the link closed as duplicates, exactly as they were; returns
    those left closed (someone reopened them, or another one is open on that account now)."""
    left: list[int] = []
    for entry in entries:
        conversation = session.exec(
            select(Conversation).where(Conversation.id == entry["id"]).with_for_update()
        ).first()
        if (
            conversation is None
            or conversation.customer_id != secondary_id
            or conversation.status != "closed"
            or conversation.close_reason != "duplicate"
            or conversation_rows.find_open(session, secondary_id, conversation.channel_account_id) is not None
        ):
            left.append(int(entry["id"]))
            continue
        for field, value in decode_state(entry).items():
            setattr(conversation, field, value)
        session.add(conversation)
        session.flush()
        conversation_rows.changed(session, conversation, {"status", "closed_at"}, now)
        conversation_rows.emit(session, "conversation.reopened", conversation)
    return left
