"""Erasing a customer's personal data (DESIGN §9), keeping anonymous counts for reports.

Removed: name, email, phone; identities (deleted, so the customer's later messages start a fresh
customer); message texts and payloads; media (rows marked ``expired`` with reason ``erased``, the
stored objects deleted by the ``media.delete`` job); transactions, tickets and tags; conversation
subjects and previews; what the link journal remembers of them (an undone link keeps the other
side's half). Copies elsewhere (events, webhook deliveries, notifications, the audit log, raw
channel content, jobs) are redacted by :mod:`max_server.services.scrub`, which leaves other
people's data alone: an agent or another customer who shares a name, email or number keeps it.

Kept: the customer row (anonymous, ``erased_at`` set), conversations, messages (without content),
SLA rows, routing decisions, so reports count the same before and after.

A customer linked into another is erased through the one it was linked into: erasing a customer
erases every customer linked into it (the same person).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, update
from sqlmodel import Session, col, select

from max_server import clock
from max_server.access import Actor
from max_server.errors import Conflict, not_found
from max_server.jobs import queue
from max_server.models import (
    AuditEntry,
    Conversation,
    Customer,
    CustomerIdentity,
    CustomerTag,
    Event,
    IdentityLink,
    MediaFile,
    Message,
    Notification,
    Ticket,
    Transaction,
    WebhookDelivery,
)
from max_server.schemas import ErasureResult, Ref
from max_server.services import audit, events
from max_server.services.link_journal import audience
from max_server.services.links import lock_customers
from max_server.services.scrub import (
    Redactor,
    identity_keys,
    needles,
    person_objects,
    strip_people,
    strip_personal,
    sweep,
)

_CHUNK = 500
MEDIA_KEYS_PER_JOB = 1000


def _group(session: Session, customer: Customer) -> list[int]:
    """The customer and every customer (transitively) linked into it."""
    assert customer.id is not None
    found, frontier = [customer.id], [customer.id]
    while frontier:
        frontier = [
            i
            for i in session.exec(select(Customer.id).where(col(Customer.merged_into_id).in_(frontier)))
            if i is not None and i not in found
        ]
        found += frontier
    return found


def _chunks(ids: list[int]) -> list[list[int]]:
    return [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)]


def _erase_media(session: Session, conversation_ids: list[int], now: datetime) -> tuple[int, list[str]]:
    """Marks the media expired (reason ``erased``); returns the count and the stored objects' keys."""
    count, keys = 0, []
    for chunk in _chunks(conversation_ids):
        for media in session.exec(select(MediaFile).where(col(MediaFile.conversation_id).in_(chunk))):
            count += 1
            if media.storage_key:
                keys.append(media.storage_key)
        session.execute(
            update(MediaFile)
            .where(col(MediaFile.conversation_id).in_(chunk))
            .values(
                status="expired",
                reason="erased",
                filename=None,
                source_url=None,
                channel_media_id=None,
                storage_key=None,
                expires_at=now,
            )
        )
    return count, keys


def _delete_objects(session: Session, keys: list[str]) -> list[int]:
    """Enqueued after the redaction, so the keys reach the job as they are in storage."""
    jobs = []
    for start in range(0, len(keys), MEDIA_KEYS_PER_JOB):
        job_id = queue.enqueue(
            session, "media.delete", {"storage_keys": keys[start : start + MEDIA_KEYS_PER_JOB]}
        )
        if job_id is not None:
            jobs.append(job_id)
    return jobs


def _events_about(customers: list[str], conversations: list[str]) -> Any:
    """Events that name these customers or conversations where the API's shapes put them (a
    conversation, a message or media, an SLA event, a notification, a customer or a link)."""
    data = Event.data
    return or_(
        data["conversation_id"].as_string().in_(conversations),
        (col(Event.type).like("conversation.%")) & data["id"].as_string().in_(conversations),
        data["conversation"]["id"].as_string().in_(conversations),
        data["data"]["conversation_id"].as_string().in_(conversations),
        data["customer_id"].as_string().in_(customers),
        data["data"]["customer_id"].as_string().in_(customers),
        data["customer"]["id"].as_string().in_(customers),
        data["conversation"]["customer"]["id"].as_string().in_(customers),
        data["primary_customer_id"].as_string().in_(customers),
        data["secondary_customer_id"].as_string().in_(customers),
    )


def _redacted_event(
    event: Event, customers: set[str], conversations: set[str], others: frozenset[tuple[str, str]]
) -> dict[str, Any]:
    """An event about the erased customers or their conversations loses every personal value;
    one about someone else that shows them (another customer's conversation while the two were
    linked, a link undone since) loses only their person objects, but for the identities listed
    there that are someone else's now (``others``)."""
    data = event.data

    def ref(*path: str) -> str | None:
        value: Any = data
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return str(value) if value is not None else None

    own = {
        ref("conversation_id"),
        ref("conversation", "id"),
        ref("data", "conversation_id"),
        ref("id") if event.type.startswith("conversation.") else None,
    } & conversations or {ref("customer_id"), ref("data", "customer_id")} & customers
    link_sides = {ref("primary_customer_id"), ref("secondary_customer_id")} - {None}
    if own or (link_sides and link_sides <= customers):
        stripped: dict[str, Any] = strip_personal(data)
        return stripped
    kept: dict[str, Any] = strip_people(data, customers, others)
    if ref("secondary_customer_id") in customers and "tags_added" in kept:
        kept["tags_added"] = []  # the tags a link adds are the secondary's
    return kept


def _identities_of_others(
    session: Session, group: list[int], found: Iterable[Event]
) -> frozenset[tuple[str, str]]:
    """The identities shown with the erased customers in these events that belong to someone
    else now (shown together while linked, the link since undone)."""
    shown: set[tuple[str, str]] = set()
    for event in found:
        for person in person_objects(event.data, {str(i) for i in group}):
            shown |= identity_keys(person)
    others: set[tuple[str, str]] = set()
    for start in range(0, len(shown), _CHUNK):
        keys = sorted(shown)[start : start + _CHUNK]
        rows = session.exec(
            select(CustomerIdentity.channel, CustomerIdentity.external_id).where(
                col(CustomerIdentity.customer_id).not_in(group),
                col(CustomerIdentity.external_id).in_({external_id for _, external_id in keys}),
            )
        )
        others |= {(channel, external_id) for channel, external_id in rows} & set(keys)
    return frozenset(others)


def _redact_copies(
    session: Session, redactor: Redactor, group: list[int], conversation_ids: list[int], since: datetime
) -> int:
    """Structural redaction of the events, deliveries, notifications and audit entries that are
    about these customers or their conversations, or show them."""
    changed = 0
    conversations = [str(i) for i in conversation_ids]
    customers = [str(i) for i in group]
    found: dict[int, Event] = {}
    for chunk in [conversations[i : i + _CHUNK] for i in range(0, len(conversations), _CHUNK)] or [[]]:
        query = select(Event).where(col(Event.created_at) >= since, _events_about(customers, chunk))
        found |= {event.id: event for event in session.exec(query) if event.id is not None}
    others = _identities_of_others(session, group, found.values())
    event_ids = {
        event_id: redactor.value(_redacted_event(event, set(customers), set(conversations), others))
        for event_id, event in found.items()
    }
    for event_id, data in event_ids.items():
        session.execute(update(Event).where(col(Event.id) == event_id).values(data=data))
        changed += 1
    for ids in _chunks(list(event_ids)):
        for delivery in session.exec(select(WebhookDelivery).where(col(WebhookDelivery.event_id).in_(ids))):
            delivery.body = _redacted_body(delivery.body, event_ids[delivery.event_id], redactor)
            session.add(delivery)
            changed += 1
    notes: dict[int | None, Notification] = {}
    about_customer = Notification.data["customer_id"].as_string().in_(customers)
    for ids in _chunks(conversation_ids) or [[]]:
        strs = [str(i) for i in ids]
        about = or_(Notification.data["conversation_id"].as_string().in_(strs), about_customer)
        notes |= {note.id: note for note in session.exec(select(Notification).where(about))}
        for entry in session.exec(
            select(AuditEntry).where(
                AuditEntry.target_type == "conversation", col(AuditEntry.target_id).in_(strs)
            )
        ):
            entry.data = redactor.value(strip_personal(entry.data))
            session.add(entry)
            changed += 1
    for note in notes.values():
        note.data, note.text = redactor.value(strip_personal(note.data)), redactor.text(note.text)
        session.add(note)
        changed += 1
    for entry in session.exec(
        select(AuditEntry).where(
            AuditEntry.target_type == "customer", col(AuditEntry.target_id).in_(customers)
        )
    ):
        entry.data = redactor.value(strip_personal(entry.data))
        session.add(entry)
        changed += 1
    return changed


def _forget(journal: IdentityLink, group: set[int], redactor: Redactor, now: datetime) -> None:
    """What the link journal remembers of the erased customers. An undone link's other side is
    someone else: their half stays."""
    journal.secondary_snapshot = {
        "erased_at": now.isoformat(),
        **{
            side: redactor.value(state)
            for side, state in journal.secondary_snapshot.items()
            if isinstance(state, dict) and state.get("id") not in group
        },
    }
    primary_erased = journal.primary_customer_id in group
    secondary_erased = journal.secondary_customer_id in group
    journal.primary_changes = {  # "before" is the primary's value, "after" the secondary's
        field: {
            "before": None if primary_erased else change.get("before"),
            "after": None if secondary_erased else change.get("after"),
        }
        for field, change in journal.primary_changes.items()
    }
    if secondary_erased:  # the tags a link adds are the secondary's
        journal.tags_added = []


def _redacted_body(body: str, data: dict[str, Any], redactor: Redactor) -> str:
    try:
        envelope = json.loads(body)
    except ValueError:
        return redactor.text(body)
    if isinstance(envelope, dict) and "data" in envelope:
        envelope["data"] = data
    else:
        envelope = redactor.value(strip_personal(envelope))
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))


def erase(session: Session, actor: Actor, customer_id: int) -> ErasureResult:
    """Erases the customer (and those linked into it) in one transaction; see the module doc."""
    found = session.get(Customer, customer_id)
    if found is None:
        raise not_found("customer", customer_id)
    if found.merged_into_id is not None:
        raise Conflict(
            f"customer {customer_id} was linked into customer {found.merged_into_id}: erase that one "
            "(it erases both), or undo the link first",
            code="customer_linked",
            details={"merged_into_id": str(found.merged_into_id)},
        )
    group = _group(session, found)
    locked = lock_customers(session, group)
    customer = locked[customer_id]
    if customer.erased_at is not None:
        raise Conflict(f"customer {customer_id} was already erased", code="customer_already_erased")
    group = _group(session, customer)  # re-read under the locks
    rows = list(lock_customers(session, group).values())
    now = clock.now()
    links = list(
        session.exec(
            select(IdentityLink).where(
                or_(
                    col(IdentityLink.primary_customer_id).in_(group),
                    col(IdentityLink.secondary_customer_id).in_(group),
                )
            )
        )
    )
    redactor = Redactor(needles(session, rows, links))
    conversation_ids = [
        i for i in session.exec(select(Conversation.id).where(col(Conversation.customer_id).in_(group))) if i
    ]
    since = min([c.created_at for c in rows])
    message_count = 0
    for chunk in _chunks(conversation_ids):
        message_count += int(
            session.exec(
                select(func.count()).select_from(Message).where(col(Message.conversation_id).in_(chunk))
            ).one()
        )
        session.execute(
            update(Message)
            .where(col(Message.conversation_id).in_(chunk))
            .values(content_text=None, payload={})
        )
        session.execute(
            update(Conversation)
            .where(col(Conversation.id).in_(chunk))
            .values(subject=None, last_message_preview=None, identity_id=None)
        )
    media_count, media_keys = _erase_media(session, conversation_ids, now)
    counts = {}
    for name, model in (
        ("identities_deleted", CustomerIdentity),
        ("transactions_deleted", Transaction),
        ("tickets_deleted", Ticket),
        ("tags_deleted", CustomerTag),
    ):
        deleted = session.execute(delete(model).where(col(model.customer_id).in_(group)))
        counts[name] = int(deleted.rowcount)  # type: ignore[attr-defined]
    for journal in links:
        _forget(journal, set(group), redactor, now)
        session.add(journal)
    for row in rows:
        row.name = row.email = row.phone_e164 = None
        row.erased_at = now
        row.is_active = False
        session.add(row)
    session.flush()
    scrubbed = _redact_copies(session, redactor, group, conversation_ids, since)
    scrubbed += sweep(session, redactor)
    media_jobs = _delete_objects(session, media_keys)
    result = ErasureResult(
        customer_id=str(customer_id),
        erased_at=now,
        erased_by=Ref(id=str(actor.user_id), name=actor.name) if actor.user_id is not None else None,
        customers=[str(i) for i in group],
        conversations=len(conversation_ids),
        messages=message_count,
        media=media_count,
        rows_scrubbed=scrubbed,
        media_delete_jobs=[str(j) for j in media_jobs],
        **counts,
    )
    data = result.model_dump(mode="json", exclude={"erased_by"})
    audit.record(session, actor, "customer.erased", "customer", customer_id, data)
    events.emit(session, "customer.erased", data, to=audience(session, group, [actor.user_id]))
    session.commit()
    return result
