"""Wire models for customers: identities, links (merges) and their undo, the context document,
what other systems feed it (transactions, tickets, tags), and erasure."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, Field, field_validator, model_validator

from max_server.schemas.core import Id, Input, Ref, Wire

Channel = Literal["whatsapp", "chat_app"]
NUL_FREE = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL; refuse it with a 422, not a 500


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]


# Customers ------------------------------------------------------------------------------
class IdentityPublic(Wire):
    id: Id
    channel: str
    external_id: str
    display_name: str | None = None
    created_at: datetime


class CustomerPublic(Wire):
    id: Id
    name: str | None = None
    email: str | None = None
    phone_e164: str | None = None
    is_active: bool
    merged_into_id: Id | None = Field(None, description="set when this customer was linked into another")
    erased_at: datetime | None = None
    identities: list[IdentityPublic] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    created_at: datetime


class CustomerList(Wire):
    customers: list[CustomerPublic]
    next_cursor: str | None = None


# Links ----------------------------------------------------------------------------------
class LinkCreate(Input):
    secondary_customer_id: Id = Field(
        description="the customer folded into the primary (the one in the path)"
    )


class LinkMoved(Wire):
    identities: int = 0
    conversations: int = 0
    transactions: int = 0
    tickets: int = 0


class LinkPublic(Wire):
    link_id: Id
    primary_customer_id: Id
    secondary_customer_id: Id
    linked_by: Ref | None = None
    created_at: datetime
    moved: LinkMoved
    fields_filled: list[str] = Field(
        default_factory=list, description="the primary's empty fields filled from the secondary"
    )
    tags_added: list[str] = Field(default_factory=list)
    closed_duplicates: list[Id] = Field(
        default_factory=list,
        description="the secondary's open conversations closed (reason `duplicate`) because the "
        "primary had one open on the same channel account; undo reopens them",
    )
    unlinked_at: datetime | None = None
    unlinked_by: Ref | None = None
    not_reopened: list[Id] = Field(
        default_factory=list,
        description="after an undo: duplicates left closed because another conversation is open",
    )


class LinkList(Wire):
    links: list[LinkPublic]
    next_cursor: str | None = None


class SuggestionReason(Wire):
    kind: Literal["phone", "email"]
    value: str


class LinkSuggestion(Wire):
    customer: CustomerPublic
    reasons: list[SuggestionReason]


class SuggestionList(Wire):
    suggestions: list[LinkSuggestion]
    next_cursor: str | None = Field(None, description="always null: the suggestions fit in one page")


# The context document (the seed's section 10) ---------------------------------------------
class ContextIdentity(Wire):
    channel: str
    external_id: str
    display_name: str | None = None


class ContextCustomer(Wire):
    id: Id
    name: str | None = None
    email: str | None = None
    phone_e164: str | None = None
    identities: list[ContextIdentity] = Field(default_factory=list)


class PreviousConversation(Wire):
    id: Id
    number: int
    channel: str
    status: str
    close_reason: str | None = None
    subject: str | None = None
    created_at: datetime
    closed_at: datetime | None = None


class RecentTransaction(Wire):
    transaction_id: str
    amount: float = Field(description="in the currency's major unit (500.0 = 500.00)")
    amount_minor: int = Field(description="exact, in minor units (cents)")
    currency: str
    status: str
    description: str | None = None
    created_at: datetime = Field(description="when it happened (same as occurred_at)")
    occurred_at: datetime


class OpenTicket(Wire):
    ticket_id: str
    subject: str
    status: str
    url: str | None = None
    updated_at: datetime


class CustomerContext(Wire):
    customer: ContextCustomer
    previous_conversations: list[PreviousConversation]
    previous_conversations_total: int
    recent_transactions: list[RecentTransaction]
    open_tickets: list[OpenTicket]
    tags: list[str]


# What other systems feed ------------------------------------------------------------------
class TransactionPut(Input):
    """Give ``amount`` (a decimal in the major unit) or ``amount_minor`` (integer cents)."""

    amount: Decimal | None = Field(None, allow_inf_nan=False, max_digits=18, description="e.g. 500.00")
    amount_minor: int | None = Field(None, ge=-(10**17), le=10**17, description="e.g. 50000 for 500.00 USD")
    currency: str = Field(min_length=3, max_length=3, pattern=r"^[A-Za-z]{3}$")
    status: Text = Field(min_length=1, max_length=32)
    description: Text | None = Field(None, max_length=500)
    occurred_at: AwareDatetime

    @field_validator("currency")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @model_validator(mode="after")
    def _one_amount(self) -> TransactionPut:
        if (self.amount is None) == (self.amount_minor is None):
            raise ValueError("give exactly one of `amount` and `amount_minor`")
        return self


class TransactionPublic(Wire):
    transaction_id: str
    customer_id: Id
    amount: float
    amount_minor: int
    currency: str
    status: str
    description: str | None = None
    occurred_at: datetime
    created_at: datetime
    updated_at: datetime


UpsertOutcome = Literal["created", "updated", "unchanged"]
_OUTCOME = "created (201), updated or unchanged (200): the same body again changes nothing"


class TransactionUpserted(TransactionPublic):
    outcome: UpsertOutcome = Field(description=_OUTCOME)


class TicketPut(Input):
    subject: Text = Field(min_length=1, max_length=300)
    status: Text = Field(min_length=1, max_length=32)
    url: Text | None = Field(None, max_length=2048)


class TicketPublic(Wire):
    ticket_id: str
    customer_id: Id
    subject: str
    status: str
    url: str | None = None
    created_at: datetime
    updated_at: datetime


class TicketUpserted(TicketPublic):
    outcome: UpsertOutcome = Field(description=_OUTCOME)


class TagsBody(Input):
    tags: list[Text] = Field(min_length=1, max_length=50)

    @field_validator("tags")
    @classmethod
    def _clean(cls, value: list[str]) -> list[str]:
        cleaned = [" ".join(tag.split()) for tag in value]
        if any(not tag or len(tag) > 64 for tag in cleaned):
            raise ValueError("each tag has 1 to 64 characters")
        return list(dict.fromkeys(cleaned))


class TagList(Wire):
    tags: list[str]


# Erasure --------------------------------------------------------------------------------
class ErasureResult(Wire):
    customer_id: Id
    erased_at: datetime
    erased_by: Ref | None = None
    customers: list[Id] = Field(description="the customer and those linked into it, all erased")
    conversations: int = Field(description="kept, anonymous, for reports")
    messages: int = Field(description="kept, without text or payload, for reports")
    media: int
    identities_deleted: int
    transactions_deleted: int
    tickets_deleted: int
    tags_deleted: int
    rows_scrubbed: int = Field(description="copies elsewhere (events, notifications, jobs, audit…) redacted")
    media_delete_jobs: list[Id] = Field(default_factory=list)
