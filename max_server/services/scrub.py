"""Finding and redacting copies of a customer's personal data outside the customer's own rows.

Events carry conversations and messages "as the API shows them", webhook deliveries keep the
exact bytes they send, notifications and the audit log quote names, raw channel content is kept
as it came. Erasure redacts those copies two ways:

* **structurally**, in rows that are about the customer or its conversations (events, their
  webhook deliveries, notifications, audit entries): message texts, payloads, previews, subjects,
  names and identities are emptied whatever their value; in rows about someone else that merely
  show the customer (a conversation of another customer shown while the two were linked), only
  the customer's person objects are emptied;
* **by value**, in the tables that hold raw channel content not tied to a customer by id
  (:data:`RAW_CONTENT_TABLES`): the customer's identifiers (name, email, phone in all its forms,
  channel ids, display names) become ``[erased]``.

Identifiers that also belong to someone else (an agent called like the customer, another
customer's email or number) are never searched for: they would erase that person's data too.
Both run inside the erasure's transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Table, Text, cast, func, or_, select, update  # columns, not models
from sqlmodel import Session, SQLModel, col

from max_server.domain.phones import phone_match_keys
from max_server.models import Customer, CustomerIdentity, IdentityLink, User
from max_server.services.customers import escape_like
from max_server.services.link_journal import FIELDS

ERASED = "[erased]"
MIN_NEEDLE = 3
# Keys whose values are the customer's words or identity wherever they appear in a copy.
PERSONAL_KEYS = frozenset(
    {
        "content_text",
        "text",
        "body",
        "caption",
        "payload",
        "last_message_preview",
        "subject",
        "filename",
        "source_url",
        "display_name",
        "external_id",
        "email",
        "phone",
        "phone_e164",
        "wa_id",
        "profile",
        "customer_name",
        "identities",
        "contacts",
        "tags",
        "tags_added",
    }
)
_PERSON_OBJECTS = frozenset({"customer", "primary", "secondary"})
# Tables holding raw channel content or free text that can quote a customer without naming it
# by id: searched by value. Everything else is either the customer's own rows (handled one by
# one), structurally redacted (events, deliveries, notifications, audit), or configuration.
# Only the content columns: a job's kind or state never quotes anyone, and must stay intact.
RAW_CONTENT_TABLES = {
    "inbound_events": ("payload",),
    "pending_statuses": ("payload",),
    "jobs": ("payload", "last_error"),
    "customer_blocks": ("reason",),
    "webhook_attempts": ("response_body", "error"),
}


def strip_personal(value: Any, parent: str | None = None) -> Any:
    """A copy of a JSON value with every personal key emptied (``payload`` becomes ``{}``)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in PERSONAL_KEYS:
                out[key] = {} if key == "payload" else ([] if isinstance(item, list) else None)
            elif key == "name" and parent in _PERSON_OBJECTS:
                out[key] = None
            else:
                out[key] = strip_personal(item, key)
        return out
    if isinstance(value, list):
        return [strip_personal(item, parent) for item in value]
    return value


def person_objects(value: Any, customer_ids: set[str], parent: str | None = None) -> Iterator[dict[str, Any]]:
    """The person objects of these customers in a JSON value: a ``customer``, ``primary`` or
    ``secondary`` object, or an item of a ``customers`` list, whose ``id`` is one of them."""
    if isinstance(value, dict):
        if parent in _PERSON_OBJECTS | {"customers"} and str(value.get("id")) in customer_ids:
            yield value
            return
        for key, item in value.items():
            yield from person_objects(item, customer_ids, key)
    elif isinstance(value, list):
        for item in value:
            yield from person_objects(item, customer_ids, parent)


def _identity_key(identity: dict[str, Any]) -> tuple[str, str]:
    return str(identity.get("channel")), str(identity.get("external_id"))


def identity_keys(person: dict[str, Any]) -> set[tuple[str, str]]:
    """(channel, external id) of the identities a person object lists."""
    return {_identity_key(i) for i in person.get("identities") or [] if isinstance(i, dict)}


def strip_people(
    value: Any,
    customer_ids: set[str],
    others: frozenset[tuple[str, str]] = frozenset(),
    parent: str | None = None,
) -> Any:
    """A copy of a JSON value with the person objects of these customers emptied (see
    :func:`person_objects`), but for the identities in ``others`` (someone else's, shown with
    the customer while the two were linked); everything outside them is kept."""
    if isinstance(value, dict):
        if parent in _PERSON_OBJECTS | {"customers"} and str(value.get("id")) in customer_ids:
            stripped: dict[str, Any] = strip_personal(value, "customer")
            if others and isinstance(value.get("identities"), list):
                shown = value["identities"]
                stripped["identities"] = [
                    i for i in shown if isinstance(i, dict) and _identity_key(i) in others
                ]
            return stripped
        return {key: strip_people(item, customer_ids, others, key) for key, item in value.items()}
    if isinstance(value, list):
        return [strip_people(item, customer_ids, others, parent) for item in value]
    return value


class Redactor:
    """Replaces a customer's identifiers in text and JSON (case-insensitive, whole words)."""

    def __init__(self, needles: Iterable[str | None]) -> None:
        forms: set[str] = set()
        for needle in needles:
            value = (needle or "").strip()
            if len(value) < MIN_NEEDLE:
                continue
            forms.add(value)
            forms.add(json.dumps(value)[1:-1])  # as JSON writes it with ensure_ascii (SQLite)
        self.forms = sorted(forms, key=len, reverse=True)
        parts = [
            (r"(?<!\w)" if re.match(r"\w", form) else "")
            + re.escape(form)
            + (r"(?!\w)" if re.match(r".*\w$", form, re.S) else "")
            for form in self.forms
        ]
        self.pattern = re.compile("|".join(parts), re.IGNORECASE) if parts else None

    def __bool__(self) -> bool:
        return self.pattern is not None

    def text(self, value: str) -> str:
        return self.pattern.sub(ERASED, value) if self.pattern is not None else value

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        return value

    def stored_text(self, value: str) -> str:
        """A text column: JSON documents (webhook bodies) are redacted as JSON, others as text."""
        if value[:1] in ("{", "["):
            try:
                parsed = json.loads(value)
            except ValueError:
                return self.text(value)
            redacted = self.value(parsed)
            return (
                value
                if redacted == parsed
                else json.dumps(redacted, ensure_ascii=False, separators=(",", ":"))
            )
        return self.text(value)


def sweep(session: Session, redactor: Redactor) -> int:
    """Redacts the identifiers in the text and JSON columns of :data:`RAW_CONTENT_TABLES`;
    returns how many rows changed."""
    if not redactor:
        return 0
    changed = 0
    tables = SQLModel.metadata.tables
    patterns = [f"%{escape_like(form.lower())}%" for form in redactor.forms]
    for name, content in RAW_CONTENT_TABLES.items():
        table: Table = tables[name]
        columns = [table.columns[column] for column in content]
        key = next(iter(table.primary_key.columns))
        matches = [
            func.lower(cast(column, Text)).like(pattern, escape="\\")
            for column in columns
            for pattern in patterns
        ]
        for row in session.execute(select(key, *columns).where(or_(*matches))).all():
            values = {}
            for column, value in zip(columns, row[1:], strict=True):
                if value is None:
                    continue
                new = redactor.stored_text(value) if isinstance(value, str) else redactor.value(value)
                if new != value:
                    values[column.name] = new
            if values:
                session.execute(update(table).where(key == row[0]).values(**values))
                changed += 1
    return changed


def _phone_forms(e164: str | None) -> set[str]:
    return {form for phone in phone_match_keys(e164) for form in (phone, phone.lstrip("+"))}


def _identifiers(session: Session, customers: list[Customer], links: list[IdentityLink]) -> set[str]:
    """What identifies the erased customers: their fields, their identities' ids and display
    names, and, from the links still in force among them, what the journal remembers of them
    (an undone link's other side is someone else, and stays)."""
    ids = {c.id for c in customers}
    found: set[str] = set()
    for customer in customers:
        found |= {customer.name or "", customer.email or ""} | _phone_forms(customer.phone_e164)
    identities = select(CustomerIdentity).where(col(CustomerIdentity.customer_id).in_(ids))
    for identity in session.scalars(identities):
        found |= {identity.external_id, identity.display_name or ""}
        if identity.channel == "whatsapp" and identity.external_id.isdigit():
            found |= _phone_forms("+" + identity.external_id)
    for journal in links:
        if journal.unlinked_at is not None:
            continue
        for side in journal.secondary_snapshot.values():
            if isinstance(side, dict) and side.get("id") in ids:
                found |= {str(side.get(f) or "") for f in FIELDS} | _phone_forms(side.get("phone_e164"))
                for identity in side.get("identities", []):
                    found |= {str(identity.get("external_id") or ""), str(identity.get("display_name") or "")}
    return {value for value in found if value}


def _held_by_others(session: Session, group: list[int], values: set[str]) -> set[str]:
    """The values (lower-cased) that are also an agent's name or email, or another customer's
    name, email, phone or identity: searching for them would erase that person's data."""
    exact, lowered = sorted(values), sorted({v.lower() for v in values})

    def matches(column: Any) -> Any:  # SQLite's lower() folds ASCII only: compare exactly too
        return or_(col(column).in_(exact), func.lower(column).in_(lowered))

    held: set[str] = set()
    for name, email in session.execute(
        select(col(User.name), col(User.email)).where(or_(matches(User.name), matches(User.email)))
    ):
        held |= {name or "", email or ""}
    others = col(Customer.id).not_in(group) & col(Customer.erased_at).is_(None)
    for name, email, phone in session.execute(
        select(col(Customer.name), col(Customer.email), col(Customer.phone_e164)).where(
            others, or_(matches(Customer.name), matches(Customer.email), matches(Customer.phone_e164))
        )
    ):
        held |= {name or "", email or ""} | _phone_forms(phone)
    for channel, external_id, display_name in session.execute(
        select(
            col(CustomerIdentity.channel),
            col(CustomerIdentity.external_id),
            col(CustomerIdentity.display_name),
        ).where(
            col(CustomerIdentity.customer_id).not_in(group),
            or_(matches(CustomerIdentity.external_id), matches(CustomerIdentity.display_name)),
        )
    ):
        held |= {external_id, display_name or ""}
        if channel == "whatsapp" and external_id.isdigit():
            held |= _phone_forms("+" + external_id)
    return {value.lower() for value in held if value}


def needles(session: Session, customers: list[Customer], links: list[IdentityLink]) -> set[str]:
    """The erased customers' identifiers that are theirs alone."""
    values = _identifiers(session, customers, links)
    group = [c.id for c in customers if c.id is not None]
    held = _held_by_others(session, group, values) if values else set()
    return {value for value in values if value.lower() not in held}
