"""What Meta tells us about templates: status, quality and category webhooks, and the periodic
sync of Meta's list (which also brings in templates made in Meta's own UI).

A webhook finds its template by Meta's template id, then by name **and** language (names
repeat across languages; never by name alone). Every status value Meta sends is stored as is.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from max_server import clock
from max_server.access import Actor
from max_server.channels.whatsapp.graph import GraphError, GraphUnreachable
from max_server.channels.whatsapp.webhook import TemplateUpdate
from max_server.db import Database
from max_server.errors import Forbidden
from max_server.jobs import queue
from max_server.models import ChannelAccount, WhatsAppTemplate
from max_server.schemas import TemplateSyncResult
from max_server.services import audit, events, notifications
from max_server.services.templates import graph, present_one, refused, whatsapp_accounts
from max_server.settings import Settings

log = logging.getLogger("max.templates")
EVENT = "template.status_updated"
SYNC_JOB = "templates.sync"
# Statuses after which an earlier refusal or pause reason no longer applies.
_CLEARS_REASON = frozenset({"APPROVED", "PENDING", "REINSTATED", "UNARCHIVED", "IN_APPEAL"})


def status_reason(value: dict[str, Any]) -> str | None:
    """Meta's reason for a status, from ``reason``, ``rejection_info``, ``other_info`` and
    ``disable_info``, as one line (None when Meta gave none)."""
    parts: list[str] = []
    reason = value.get("reason")
    if isinstance(reason, str) and reason and reason.upper() != "NONE":
        parts.append(reason)
    rejection = value.get("rejection_info")
    if isinstance(rejection, dict):
        parts += [str(rejection[k]) for k in ("reason", "recommendation") if rejection.get(k)]
    other = value.get("other_info")
    if isinstance(other, dict):
        title, description = other.get("title"), other.get("description")
        parts.append(": ".join(str(p) for p in (title, description) if p))
    disable = value.get("disable_info")
    if isinstance(disable, dict) and disable.get("disable_date"):
        parts.append(f"disabled on {disable['disable_date']}")
    text = "; ".join(p for p in parts if p)
    return text or None


# Webhooks --------------------------------------------------------------------------------------
def on_template_update(session: Session, update: TemplateUpdate, now: datetime) -> bool:
    """The ``ingest.on_template_update`` hook. False (the raw event is kept) when no template
    matches; a sync is then queued, since the template was probably made in Meta's UI."""
    value = update.value
    rows = matching(session, value)
    if not rows:
        queue.enqueue(session, SYNC_JOB, {"reason": "unknown template"}, dedupe_key=f"{SYNC_JOB}:unknown")
        return False
    template_id = value.get("message_template_id")
    for row in rows:
        if row.whatsapp_template_id is None and template_id is not None:
            row.whatsapp_template_id = str(template_id)
        if update.field == "message_template_status_update":
            event = str(value.get("event") or "").upper()
            if not event:
                return False
            category = value.get("message_template_category")
            if isinstance(category, str) and category:
                row.category = category.upper()
            set_status(session, row, event, status_reason(value), now)
        elif update.field == "message_template_quality_update":
            score = value.get("new_quality_score")
            if isinstance(score, str) and score.upper() != (row.quality or ""):
                row.quality = score.upper()
                _changed(session, row, "quality", row.status, now)
        elif update.field == "template_category_update":
            category = value.get("new_category")
            if isinstance(category, str) and category.upper() != row.category:
                row.category = category.upper()
                _changed(session, row, "category", row.status, now)
        session.add(row)
    return True


def matching(session: Session, value: dict[str, Any]) -> list[WhatsAppTemplate]:
    """By Meta's template id; else by name and language on the webhook's WABA."""
    template_id = value.get("message_template_id")
    if template_id is not None:
        rows = list(
            session.exec(
                select(WhatsAppTemplate).where(WhatsAppTemplate.whatsapp_template_id == str(template_id))
            )
        )
        if rows:
            return rows
    name, language = value.get("message_template_name"), value.get("message_template_language")
    if not isinstance(name, str) or not isinstance(language, str):
        return []
    accounts = list(session.exec(select(ChannelAccount).where(ChannelAccount.kind == "whatsapp")))
    waba = value.get("waba_id")
    on_waba = [a.id for a in accounts if waba and a.waba_id == waba]
    account_ids = on_waba or [a.id for a in accounts]
    return list(
        session.exec(
            select(WhatsAppTemplate).where(
                WhatsAppTemplate.name == name,
                WhatsAppTemplate.language == language,
                col(WhatsAppTemplate.channel_account_id).in_(account_ids),
            )
        )
    )


def set_status(
    session: Session, row: WhatsAppTemplate, status: str, reason: str | None, now: datetime
) -> bool:
    """Stores Meta's status (any value); notifies the creator when it changed."""
    new_reason = None if status in _CLEARS_REASON else (reason or row.rejection_reason)
    previous = row.status
    if previous == status and row.rejection_reason == new_reason:
        return False  # Meta repeats webhooks
    row.status, row.rejection_reason = status, new_reason
    _changed(session, row, "status", previous, now)
    if previous != status and row.created_by_id is not None:
        because = f": {new_reason}" if new_reason else ""
        notifications.notify(
            session,
            [row.created_by_id],
            EVENT,
            f"Template '{row.name}' ({row.language}) {status.lower()}{because}",
            {
                "template_id": str(row.id),
                "name": row.name,
                "language": row.language,
                "status": status,
                "previous_status": previous,
                "reason": new_reason,
            },
        )
    return True


def _changed(session: Session, row: WhatsAppTemplate, change: str, previous: str, now: datetime) -> None:
    row.updated_at = now
    session.add(row)
    session.flush()
    data = {
        **present_one(session, row).model_dump(mode="json"),
        "previous_status": previous,
        "change": change,
    }
    # Admins receive every event; the creator is named so they hear about theirs.
    events.emit(session, EVENT, data, to=events.audience(users=[row.created_by_id]))


# Sync ------------------------------------------------------------------------------------------
def sync(db: Database, settings: Settings, actor: Actor | None = None) -> TemplateSyncResult:
    """Pulls every WABA's templates from Meta and brings ours in line: new ones are added (made
    in Meta's UI), changed ones updated, ones Meta no longer has marked DELETED."""
    if not settings.whatsapp.access_token:
        return TemplateSyncResult()
    with db.session(write=False) as session:
        accounts = whatsapp_accounts(session, settings)
    remote: dict[str, list[dict[str, Any]]] = {}
    client = graph(settings)
    for _, waba in accounts:
        if waba not in remote:
            remote[waba] = client.list_templates(waba)  # GraphError / GraphUnreachable: caller decides
    result = TemplateSyncResult(accounts=len(accounts))
    with db.session() as session:
        now = clock.now()
        for account, waba in accounts:
            assert account.id is not None
            _sync_account(session, account.id, remote[waba], result, now)
        if actor is not None:
            audit.record(session, actor, "templates.synced", "whatsapp_template", None, result.model_dump())
        session.commit()
    return result


def _sync_account(
    session: Session, account_id: int, items: list[dict[str, Any]], result: TemplateSyncResult, now: datetime
) -> None:
    local = list(
        session.exec(select(WhatsAppTemplate).where(WhatsAppTemplate.channel_account_id == account_id))
    )
    by_id = {r.whatsapp_template_id: r for r in local if r.whatsapp_template_id}
    by_key = {(r.name, r.language): r for r in local}
    seen: set[int] = set()
    for item in items:
        name, language = item.get("name"), item.get("language")
        if not isinstance(name, str) or not isinstance(language, str):
            continue
        meta_id = str(item["id"]) if item.get("id") is not None else None
        row = (by_id.get(meta_id) if meta_id else None) or by_key.get((name, language))
        status = str(item.get("status") or "PENDING").upper()
        fields: dict[str, Any] = {
            "category": str(item.get("category") or "UTILITY").upper(),
            "components": item.get("components") if isinstance(item.get("components"), list) else [],
            "parameter_format": str(item.get("parameter_format") or "positional").lower(),
            "whatsapp_template_id": meta_id,
        }
        if row is None:
            row = WhatsAppTemplate(
                channel_account_id=account_id,
                name=name,
                language=language,
                status=status,
                created_at=now,
                updated_at=now,
                **fields,
            )
            session.add(row)
            session.flush()
            by_key[(name, language)] = row
            result.added += 1
            _changed(session, row, "added", status, now)
        else:
            differs = {k: v for k, v in fields.items() if getattr(row, k) != v}
            for key, value in differs.items():
                setattr(row, key, value)
            rejected = item.get("rejected_reason")
            reason = rejected if isinstance(rejected, str) and rejected.upper() != "NONE" else None
            moved = set_status(session, row, status, reason, now) if status != row.status else False
            if differs and not moved:
                row.updated_at = now
                session.add(row)
            if differs or moved:
                result.updated += 1
            else:
                result.unchanged += 1
        assert row.id is not None
        seen.add(row.id)
    for row in local:
        if row.id not in seen and row.whatsapp_template_id and row.status != "DELETED":
            set_status(session, row, "DELETED", "no longer in WhatsApp's list", now)
            result.removed += 1


def sync_or_raise(db: Database, settings: Settings, actor: Actor) -> TemplateSyncResult:
    """For the API: Meta's failures become 422/503 like other template calls."""
    if not actor.is_admin:
        raise Forbidden("only admins manage templates", code="insufficient_role")
    try:
        return sync(db, settings, actor)
    except (GraphError, GraphUnreachable) as exc:
        refused(exc, "the template list")
