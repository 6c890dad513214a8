"""Customers and the channel identities they write from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from max_server.models.base import UTCDateTime, created_at_field, fk, id_field, json_field, time_field


class Customer(SQLModel, table=True):
    __tablename__ = "customers"

    id: int | None = id_field()
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320, index=True)
    phone_e164: str | None = Field(default=None, max_length=32, index=True)
    is_active: bool = Field(default=True)
    merged_into_id: int | None = fk("customers.id", nullable=True, ondelete="SET NULL")
    erased_at: datetime | None = time_field()
    created_at: datetime = created_at_field()


class CustomerIdentity(SQLModel, table=True):
    __tablename__ = "customer_identities"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_customer_identities_channel_external"),
    )

    id: int | None = id_field()
    customer_id: int = fk("customers.id")
    channel: str = Field(max_length=16)
    external_id: str = Field(max_length=128)
    display_name: str | None = Field(default=None, max_length=200)
    created_at: datetime = created_at_field()


class CustomerTag(SQLModel, table=True):
    __tablename__ = "customer_tags"
    __table_args__ = (UniqueConstraint("customer_id", "tag", name="uq_customer_tags_customer_tag"),)

    id: int | None = id_field()
    customer_id: int = fk("customers.id", index=False)
    tag: str = Field(max_length=64)
    created_at: datetime = created_at_field()


class Transaction(SQLModel, table=True):
    """A purchase or payment another system reported, shown in the customer's context."""

    __tablename__ = "transactions"
    __table_args__ = (Index("ix_transactions_customer_occurred", "customer_id", "occurred_at"),)

    id: int | None = id_field()
    customer_id: int = fk("customers.id", index=False)
    external_id: str = Field(max_length=128, unique=True)
    # Exact money: integer minor units (cents) and the ISO 4217 currency.
    amount_minor: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    status: str = Field(max_length=32)
    description: str | None = Field(default=None, max_length=500)
    occurred_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class Ticket(SQLModel, table=True):
    """A ticket in another system (help desk, bug tracker) about this customer."""

    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_customer_status", "customer_id", "status"),)

    id: int | None = id_field()
    customer_id: int = fk("customers.id", index=False)
    external_id: str = Field(max_length=128, unique=True)
    subject: str = Field(max_length=300)
    status: str = Field(max_length=32)
    url: str | None = Field(default=None, max_length=2048)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class IdentityLink(SQLModel, table=True):
    """The journal of one link (merge) of two customers: enough to undo it exactly."""

    __tablename__ = "identity_links"

    id: int | None = id_field()
    primary_customer_id: int = fk("customers.id")
    secondary_customer_id: int = fk("customers.id")
    linked_by_id: int | None = fk("users.id", nullable=True, ondelete="SET NULL", index=False)
    moved: dict[str, Any] = json_field(dict)  # {"identities": [...], "conversations": [...], ...}
    primary_changes: dict[str, Any] = json_field(dict)  # field -> value before the link
    tags_added: list[Any] = json_field(list)
    secondary_snapshot: dict[str, Any] = json_field(dict)
    created_at: datetime = created_at_field()
    unlinked_at: datetime | None = time_field()
    unlinked_by_id: int | None = fk("users.id", nullable=True, ondelete="SET NULL", index=False)
