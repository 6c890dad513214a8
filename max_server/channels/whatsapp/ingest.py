"""One WhatsApp webhook, in one transaction: messages, statuses, template updates, the rest."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from max_server.channels.whatsapp.webhook import (
    MEDIA_TYPES,
    InboundMessage,
    Item,
    StatusUpdate,
    TemplateUpdate,
)
from max_server.domain.phones import to_e164
from max_server.models import ChannelAccount, InboundEvent
from max_server.services import channels, identities, inbound, statuses
from max_server.services.inbound import Inbound, MediaSpec
from max_server.settings import Settings

log = logging.getLogger("max.whatsapp")
CHANNEL = "whatsapp"
TemplateHook = Callable[[Session, TemplateUpdate, datetime], bool]
_template_hooks: list[TemplateHook] = []


def on_template_update(hook: TemplateHook) -> TemplateHook:
    """Registers a handler for template webhooks (it returns True when it handled one)."""
    _template_hooks.append(hook)
    return hook


def process(session: Session, settings: Settings, items: list[Item], now: datetime) -> Counter[str]:
    """Applies every item (parsed from a body made storable: ``domain.text.storable``); the
    caller commits once. Returns counts by outcome.

    Each item runs in its own savepoint: one that cannot be stored (a bug, a value the database
    refuses) is kept raw as a ``failed:<kind>`` inbound event instead, and the rest commits, so
    Meta does not retry the whole webhook forever. Only a failure of the database itself
    (``OperationalError``) fails the webhook, and then nothing is stored and Meta retries."""
    counts: Counter[str] = Counter()
    accounts: dict[str, ChannelAccount] = {}
    # A webhook of one item (nearly all of them) needs no savepoint: rolling back the whole
    # transaction undoes exactly what the savepoint would, two statements cheaper.
    alone = len(items) == 1 and not session.in_transaction()
    for item in items:
        savepoint = None if alone else session.begin_nested()
        try:
            outcome = _item(session, settings, item, accounts, now)
            if savepoint is not None:
                savepoint.commit()
        except OperationalError:
            raise
        except Exception as exc:
            if savepoint is not None:
                savepoint.rollback()
                # Rows read inside the savepoint may be gone, or their ids reused (SQLite):
                # nothing in the identity map is trusted any more. Earlier items are flushed,
                # so none is lost.
                session.expire_all()
            else:
                session.rollback()
            accounts.clear()
            log.exception("webhook item could not be stored; kept raw instead: %s", describe(item))
            _keep_failed(session, item, exc)
            outcome = "kept_failed"
        counts[outcome] += 1
    return counts


def _item(
    session: Session,
    settings: Settings,
    item: Item,
    accounts: dict[str, ChannelAccount],
    now: datetime,
) -> str:
    if isinstance(item, InboundMessage):
        account = accounts.get(item.account.phone_number_id) or _account(session, item)
        accounts[item.account.phone_number_id] = account
        return _message(session, settings, account, item, now)
    if isinstance(item, StatusUpdate):
        outcome = statuses.apply(
            session,
            CHANNEL,
            item.wamid,
            item.status,
            item.timestamp,
            item.errors,
            item.raw,
            now,
            callback=item.callback_data,
        )
        return f"status_{outcome}"
    if isinstance(item, TemplateUpdate):
        handled = any(hook(session, item, now) for hook in _template_hooks)
        if not handled:
            session.add(InboundEvent(channel=CHANNEL, kind=item.field, payload=item.value))
        return "template_update"
    session.add(InboundEvent(channel=CHANNEL, kind=item.kind, payload=item.payload))
    return "kept_unknown"


def _keep_failed(session: Session, item: Item, exc: Exception) -> None:
    if isinstance(item, InboundMessage):
        raw: dict[str, object] = {"message": item.raw, "phone_number_id": item.account.phone_number_id}
    elif isinstance(item, StatusUpdate):
        raw = {"status": item.raw, "phone_number_id": item.account.phone_number_id}
    elif isinstance(item, TemplateUpdate):
        raw = {"field": item.field, "value": item.value}
    else:
        raw = {"kind": item.kind, "payload": item.payload}
    raw["error"] = f"{type(exc).__name__}: {exc}"[:1000]
    session.add(InboundEvent(channel=CHANNEL, kind=f"failed:{type(item).__name__}", payload=raw))
    session.flush()


def _account(session: Session, item: InboundMessage) -> ChannelAccount:
    # Meta only sends our app the numbers subscribed to it: an unseen one becomes an account.
    return channels.account_for_ingest(
        session,
        "whatsapp",
        item.account.phone_number_id,
        name=item.account.display_phone_number or "",
        waba_id=item.account.waba_id,
        display_number=item.account.display_phone_number,
    )


def _message(
    session: Session, settings: Settings, account: ChannelAccount, item: InboundMessage, now: datetime
) -> str:
    keys = [k for k in (item.wa_id, item.user_id) if k]
    if item.type == "system" and item.new_wa_id and item.wa_id:
        identities.move_identity(session, CHANNEL, item.wa_id, item.new_wa_id)
        keys = [item.new_wa_id, *(k for k in keys if k != item.wa_id)]
    media = []
    if item.media is not None and item.type in MEDIA_TYPES:
        media.append(
            MediaSpec(
                media_type=item.type,
                channel_media_id=item.media.id,
                mime_type=item.media.mime_type,
                filename=item.media.filename,
                sha256=item.media.sha256,
            )
        )
    stored = inbound.ingest(
        session,
        Inbound(
            channel=CHANNEL,
            account=account,
            channel_message_id=item.wamid,
            identity_keys=keys,
            type=item.type,
            text=item.text,
            payload=item.raw,
            sent_at=item.timestamp,
            display_name=item.profile_name,
            phone_e164=to_e164(item.wa_id) if item.wa_id else None,
            reply_to=item.reply_to,
            flags=item.flags,
            media=media,
            storable=True,  # the webhook made its whole body storable
        ),
        now=now,
        reopen_window=settings.routing.reopen_window,
    )
    if stored is None:
        return "duplicate"
    inbound.after_ingest(session, stored, settings, now)
    return "stored"


def describe(item: Item) -> dict[str, object]:
    """A loggable summary (no message text)."""
    if isinstance(item, InboundMessage):
        return {"wamid": item.wamid, "type": item.type}
    if isinstance(item, StatusUpdate):
        return {"wamid": item.wamid, "status": item.status}
    return {
        "kind": type(item).__name__,
        **({"field": item.field} if isinstance(item, TemplateUpdate) else {}),
    }
