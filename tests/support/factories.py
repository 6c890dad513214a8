"""Rows for tests that need a conversation without going through a channel."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import select

from max_server import clock
from max_server.db import Database
from max_server.models import ChannelAccount, Conversation, Customer, Message


def channel_account(db: Database, kind: str = "whatsapp", external_id: str = "100200300") -> ChannelAccount:
    with db.session() as session:
        found = session.exec(
            select(ChannelAccount).where(
                ChannelAccount.kind == kind, ChannelAccount.external_id == external_id
            )
        ).first()
        if found:
            return found
        account = ChannelAccount(kind=kind, external_id=external_id, name=f"{kind} {external_id}")
        session.add(account)
        session.commit()
        return account


def customer(db: Database, name: str = "Juan López", **fields: Any) -> Customer:
    with db.session() as session:
        row = Customer(name=name, **fields)
        session.add(row)
        session.commit()
        return row


def conversation(
    db: Database,
    *,
    team: Any = None,
    assignee: Any = None,
    status: str | None = None,
    customer_row: Customer | None = None,
    account: ChannelAccount | None = None,
    **fields: Any,
) -> Conversation:
    account = account or channel_account(db)
    customer_row = customer_row or customer(db)
    with db.session() as session:
        number = (session.exec(select(func.max(Conversation.number))).one() or 0) + 1
        now = clock.now()
        row = Conversation(
            number=number,
            customer_id=customer_row.id,  # type: ignore[arg-type]
            channel_account_id=account.id,  # type: ignore[arg-type]
            team_id=getattr(team, "id", None),
            assignee_id=getattr(assignee, "id", None),
            status=status or ("assigned" if assignee else "queued"),
            first_message_at=now,
            last_customer_message_at=now,
            last_message_at=now,
            **fields,
        )
        session.add(row)
        session.commit()
        return row


def message(db: Database, conversation_row: Conversation, text: str = "hola", **fields: Any) -> Message:
    with db.session() as session:
        row = Message(
            conversation_id=conversation_row.id,  # type: ignore[arg-type]
            direction=fields.pop("direction", "inbound"),
            sender_type=fields.pop("sender_type", "customer"),
            channel=fields.pop("channel", "whatsapp"),
            content_text=text,
            **fields,
        )
        session.add(row)
        session.commit()
        return row
