"""Finding and redacting copies of a customer's personal data outside the customer's own rows.

Events carry conversations and messages "as the API shows them", webhook deliveries keep the
exact bytes they send, notifications and the audit log quote names, unknown webhook content is
kept as it came. Erasure redacts those copies two ways:

* **structurally**, in rows that are about the customer's conversations (events, their webhook
  deliveries, notifications, audit entries): message texts, payloads, previews, subjects, names
  and identities are emptied whatever their value;
* **by value**, everywhere else: every text and JSON column of every table that is neither the
  customer's own data nor configuration is searched for the customer's identifiers (name, email,
  phone in all its forms, channel ids, display names), and each occurrence becomes ``[erased]``.

Both run inside the erasure's transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import JSON, String, Table, Text, cast, func, or_, select, update
from sqlmodel import Session, SQLModel

from max_server.services.customers import escape_like

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
# Tables the erasure handles row by row (the customer's own data), and configuration and people
# that never hold customer data (an agent who shares a customer's name keeps it).
OWN_TABLES = frozenset(
    {
        "customers",
        "customer_identities",
        "customer_tags",
        "transactions",
        "tickets",
        "identity_links",
        "conversations",
        "messages",
        "media_files",
    }
)
CONFIG_TABLES = frozenset(
    {
        "users",
        "api_tokens",
        "teams",
        "team_members",
        "agent_skills",
        "channel_accounts",
        "canned_responses",
        "sla_policies",
        "sla_targets",
        "business_hours",
        "holidays",
        "whatsapp_templates",
        "webhook_subscriptions",
        "routing_rules",
        "periodic_ticks",
        "alembic_version",
    }
)


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


def _searchable(table: Table) -> list[Any]:
    return [
        column
        for column in table.columns
        if not column.primary_key and isinstance(column.type, String | Text | JSON)
    ]


def sweep(session: Session, redactor: Redactor, *, skip: frozenset[str] = frozenset()) -> int:
    """Redacts the identifiers in every text and JSON column of every table that is neither the
    customer's own nor configuration; returns how many rows changed."""
    if not redactor:
        return 0
    changed = 0
    for table in SQLModel.metadata.sorted_tables:
        if table.name in OWN_TABLES | CONFIG_TABLES | skip or len(table.primary_key.columns) != 1:
            continue
        columns = _searchable(table)
        if not columns:
            continue
        key = next(iter(table.primary_key.columns))
        patterns = [f"%{escape_like(form.lower())}%" for form in redactor.forms]
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
