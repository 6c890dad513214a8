"""Customers and the channel identities they write from."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from max_server.models.base import created_at_field, fk, id_field, time_field


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
