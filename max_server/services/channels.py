"""Channel accounts: WhatsApp business numbers and the Chat App."""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import SessionTransaction, make_transient_to_detached, object_session
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, col, select

from max_server import wakeup
from max_server.access import Actor
from max_server.db import dialect_insert
from max_server.errors import Conflict, Forbidden, Unprocessable, not_found
from max_server.models import ChannelAccount, Team
from max_server.services import audit
from max_server.services.pagination import clamp_limit
from max_server.services.teams import find_team
from max_server.settings import Settings

_A = ChannelAccount.__table__  # type: ignore[attr-defined]
CHAT_APP_DEFAULT = "default"
ACCOUNT_TTL = 60.0  # seconds; a safety net only (a change anywhere clears every process's copy)


def ensure_config_accounts(session: Session, settings: Settings) -> None:
    """The ``[whatsapp]`` section's number (and the Chat App, when configured) exist as accounts."""
    if settings.whatsapp.phone_number_id:
        upsert(
            session,
            "whatsapp",
            settings.whatsapp.phone_number_id,
            name=settings.whatsapp.display_phone_number or "WhatsApp",
            waba_id=settings.whatsapp.waba_id or None,
            display_number=settings.whatsapp.display_phone_number or None,
        )
    if settings.chat_app.secret:
        upsert(session, "chat_app", CHAT_APP_DEFAULT, name="Chat App")
    session.commit()


def upsert(
    session: Session,
    kind: str,
    external_id: str,
    *,
    name: str = "",
    waba_id: str | None = None,
    display_number: str | None = None,
) -> ChannelAccount:
    """The account, created if missing (concurrent creators agree on one row)."""
    found = session.exec(
        select(ChannelAccount).where(ChannelAccount.kind == kind, ChannelAccount.external_id == external_id)
    ).first()
    if found is not None:
        return found  # the common case (ingest asks through account_for_ingest's copy first)
    session.execute(
        dialect_insert(session, _A)
        .values(
            kind=kind,
            external_id=external_id,
            name=name or f"{kind} {external_id}",
            waba_id=waba_id,
            display_number=display_number,
            is_active=True,
            created_at=_now(),
        )
        .on_conflict_do_nothing(index_elements=["kind", "external_id"])
    )
    account = session.exec(
        select(ChannelAccount).where(ChannelAccount.kind == kind, ChannelAccount.external_id == external_id)
    ).one()
    return account


def _now():
    from max_server import clock

    return clock.now()


# The ingest path's accounts ---------------------------------------------------------------------
# Every inbound message needs its account; accounts change a few times a year. Each process keeps
# the accounts committed transactions read, per database (keyed by the engine's pool: a new or
# disposed engine starts empty). Any change to an account, or a team's deletion (which empties
# default teams in the database), asks for an ``accounts`` wake-up: it clears this process's copy
# at commit and every other process's through LISTEN/NOTIFY. Entries also expire after
# ACCOUNT_TTL, for changes made outside MAX.
_SEEN = "max_accounts_seen"  # session.info: accounts read by this transaction, kept at commit
_COLUMNS = [attr.key for attr in inspect(ChannelAccount).column_attrs]


class _AccountCache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.generation = 0  # bumped by every clearing: a read from before it is not kept
        self.entries: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], tuple[float, dict[str, Any]]]] = (
            weakref.WeakKeyDictionary()
        )
        self.changed = wakeup.SIGNALS.subscribe("accounts")

    def get(self, pool: Any, key: tuple[str, str]) -> tuple[int, dict[str, Any] | None]:
        with self.lock:
            if self.changed.is_set():
                self.changed.clear()
                self.entries.clear()
                self.generation += 1
            found = self.entries.get(pool, {}).get(key)
            if found is not None and found[0] < time.monotonic():
                found = None
            return self.generation, found[1] if found is not None else None

    def keep(self, generation: int, pool: Any, key: tuple[str, str], values: dict[str, Any]) -> None:
        with self.lock:
            if generation == self.generation and not self.changed.is_set():
                self.entries.setdefault(pool, {})[key] = (time.monotonic() + ACCOUNT_TTL, values)


_cache = _AccountCache()


def account_for_ingest(
    session: Session,
    kind: str,
    external_id: str,
    *,
    name: str = "",
    waba_id: str | None = None,
    display_number: str | None = None,
) -> ChannelAccount:
    """:func:`upsert`, answered from this process's copy when it has one (no query)."""
    pool = session.get_bind().engine.pool
    generation, values = _cache.get(pool, (kind, external_id))
    if values is not None:
        held = session.identity_map.get(identity_key(ChannelAccount, values["id"]))
        if held is not None:
            return held
        account = ChannelAccount(**values)
        make_transient_to_detached(account)  # as if loaded: persistent and clean once added
        session.add(account)
        return account
    account = upsert(session, kind, external_id, name=name, waba_id=waba_id, display_number=display_number)
    seen = {column: getattr(account, column) for column in _COLUMNS}
    session.info.setdefault(_SEEN, []).append((generation, pool, (kind, external_id), seen))
    return account


@event.listens_for(Session, "after_commit")
def _keep_seen(session: Session) -> None:
    if session.in_nested_transaction():
        return
    for generation, pool, key, values in session.info.pop(_SEEN, ()):
        _cache.keep(generation, pool, key, values)  # committed: the row exists for everyone


@event.listens_for(Session, "after_transaction_end")
def _forget_seen(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_SEEN, None)


@event.listens_for(ChannelAccount, "after_insert")
@event.listens_for(ChannelAccount, "after_update")
@event.listens_for(ChannelAccount, "after_delete")
@event.listens_for(Team, "after_delete")
def _accounts_changed(mapper: Any, connection: Any, target: Any) -> None:
    session = object_session(target)
    if session is not None:
        wakeup.request(session, "accounts")  # type: ignore[arg-type]


def list_accounts(
    session: Session, *, after_id: int | None = None, limit: int | None = None
) -> tuple[list[ChannelAccount], int | None]:
    """Oldest first; returns the page and the id to continue after (or None)."""
    size = clamp_limit(limit)
    query = select(ChannelAccount)
    if after_id is not None:
        query = query.where(col(ChannelAccount.id) > after_id)
    rows = list(session.exec(query.order_by(col(ChannelAccount.id)).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1].id if more and rows else None)


def find_account(session: Session, ref: str) -> ChannelAccount:
    """By id, or by WhatsApp phone_number_id / Chat App name."""
    account = session.get(ChannelAccount, int(ref)) if ref.isdecimal() and len(ref) < 12 else None
    if account is None:
        account = session.exec(select(ChannelAccount).where(ChannelAccount.external_id == ref)).first()
    if account is None:
        raise not_found("channel account", ref)
    return account


def add_whatsapp(
    session: Session,
    actor: Actor,
    *,
    phone_number_id: str,
    waba_id: str | None,
    display_number: str | None,
    name: str | None,
    default_team: str | None,
) -> ChannelAccount:
    if not actor.is_admin:
        raise Forbidden("only admins manage channels")
    team_id = find_team(session, default_team).id if default_team else None
    account = ChannelAccount(
        kind="whatsapp",
        external_id=phone_number_id,
        waba_id=waba_id,
        display_number=display_number,
        name=name or display_number or f"WhatsApp {phone_number_id}",
        default_team_id=team_id,
    )
    session.add(account)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(
            f"WhatsApp number {phone_number_id} is already a channel (MAX adds a number when its "
            f"first webhook arrives); change it with `max channels update {phone_number_id}`",
            code="channel_exists",
        ) from None
    audit.record(
        session, actor, "channel.created", "channel_account", account.id, {"phone_number_id": phone_number_id}
    )
    session.commit()
    return account


def update(
    session: Session,
    actor: Actor,
    ref: str,
    *,
    name: str | None = None,
    waba_id: str | None = None,
    display_number: str | None = None,
) -> ChannelAccount:
    """Changes what an admin knows about a number (e.g. one MAX added from its first webhook,
    which only told it the phone_number_id). Fields left None stay; "" clears waba_id and
    display_number."""
    if not actor.is_admin:
        raise Forbidden("only admins manage channels")
    account = find_account(session, ref)
    changes: dict[str, dict[str, str | None]] = {}
    for field, value in (("name", name), ("waba_id", waba_id), ("display_number", display_number)):
        if value is None:
            continue
        new = value.strip() or None
        if field == "name" and new is None:
            raise Unprocessable("a channel's name cannot be empty", code="invalid_name")
        if getattr(account, field) != new:
            changes[field] = {"from": getattr(account, field), "to": new}
            setattr(account, field, new)
    if changes:
        session.add(account)
        audit.record(session, actor, "channel.updated", "channel_account", account.id, changes)
        session.commit()
    return account


def set_default_team(session: Session, actor: Actor, ref: str, team: str | None) -> ChannelAccount:
    if not actor.is_admin:
        raise Forbidden("only admins manage channels")
    account = find_account(session, ref)
    account.default_team_id = find_team(session, team).id if team else None
    session.add(account)
    audit.record(session, actor, "channel.default_team_set", "channel_account", account.id, {"team": team})
    session.commit()
    return account
