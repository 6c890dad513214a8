"""The customer context document (the seed's section 10): who the customer is, their previous
conversations, recent transactions, open tickets and tags.

Every list is bounded and read with one indexed query (conversations by ``(customer_id,
created_at, id)``, transactions by ``(customer_id, occurred_at)``, tickets by ``(customer_id,
status)``), so a customer with thousands of conversations answers as fast as a new one: five
round trips whatever the history, never one per row.
"""

from __future__ import annotations

from sqlalchemy import String, func, literal, union_all
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from max_server.access import Actor
from max_server.models import ChannelAccount, Conversation, CustomerIdentity, CustomerTag, Ticket, Transaction
from max_server.schemas import (
    ContextCustomer,
    ContextIdentity,
    CustomerContext,
    OpenTicket,
    PreviousConversation,
    RecentTransaction,
)
from max_server.services.customer_feeds import to_major
from max_server.services.customers import follow, get_visible

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# Ticket statuses other systems use for "done"; anything else is open.
CLOSED_TICKET_STATUSES = ("closed", "solved", "resolved", "done", "cancelled", "canceled", "rejected")


def build(
    session: Session,
    actor: Actor,
    customer_id: int,
    *,
    limit: int = DEFAULT_LIMIT,
    exclude_conversation_id: int | None = None,
) -> CustomerContext:
    """The context of a customer (a linked-away id answers for the customer it was linked into).
    Reads plain columns (no ORM objects): the panel is asked for on every conversation opened."""
    size = max(1, min(MAX_LIMIT, limit))
    customer = follow(session, get_visible(session, actor, customer_id))
    # Identities and tags in one round trip.
    nothing = literal(None, String)
    people = session.execute(
        union_all(
            sa_select(
                literal("identity"),
                col(CustomerIdentity.channel),
                col(CustomerIdentity.external_id),
                col(CustomerIdentity.display_name),
                col(CustomerIdentity.id),
            ).where(col(CustomerIdentity.customer_id) == customer.id),
            sa_select(literal("tag"), col(CustomerTag.tag), nothing, nothing, col(CustomerTag.id)).where(
                col(CustomerTag.customer_id) == customer.id
            ),
        )
    ).all()
    identities = sorted((row for row in people if row[0] == "identity"), key=lambda row: row[4])
    tags = sorted(row[1] for row in people if row[0] == "tag")
    mine = [col(Conversation.customer_id) == customer.id]
    if exclude_conversation_id is not None:
        mine.append(col(Conversation.id) != exclude_conversation_id)
    # The total rides along with the page (one round trip); no rows means no conversations.
    total = sa_select(func.count()).select_from(Conversation).where(*mine).scalar_subquery()
    conversations = session.execute(
        sa_select(
            col(Conversation.id),
            col(Conversation.number),
            col(ChannelAccount.kind),
            col(Conversation.status),
            col(Conversation.close_reason),
            col(Conversation.subject),
            col(Conversation.created_at),
            col(Conversation.closed_at),
            total,
        )
        .join(ChannelAccount, col(ChannelAccount.id) == Conversation.channel_account_id)
        .where(*mine)
        .order_by(col(Conversation.created_at).desc(), col(Conversation.id).desc())
        .limit(size)
    ).all()
    transactions = session.execute(
        sa_select(
            col(Transaction.external_id),
            col(Transaction.amount_minor),
            col(Transaction.currency),
            col(Transaction.status),
            col(Transaction.description),
            col(Transaction.occurred_at),
        )
        .where(col(Transaction.customer_id) == customer.id)
        .order_by(col(Transaction.occurred_at).desc(), col(Transaction.id).desc())
        .limit(size)
    ).all()
    tickets = session.execute(
        sa_select(
            col(Ticket.external_id),
            col(Ticket.subject),
            col(Ticket.status),
            col(Ticket.url),
            col(Ticket.updated_at),
        )
        .where(
            col(Ticket.customer_id) == customer.id,
            func.lower(Ticket.status).not_in(CLOSED_TICKET_STATUSES),
        )
        .order_by(col(Ticket.updated_at).desc(), col(Ticket.id).desc())
        .limit(size)
    ).all()
    return CustomerContext(
        customer=ContextCustomer(
            id=str(customer.id),
            name=customer.name,
            email=customer.email,
            phone_e164=customer.phone_e164,
            identities=[
                ContextIdentity(channel=channel, external_id=external_id, display_name=display_name)
                for _, channel, external_id, display_name, _ in identities
            ],
        ),
        previous_conversations=[
            PreviousConversation(
                id=str(row[0]),
                number=row[1],
                channel=row[2],
                status=row[3],
                close_reason=row[4],
                subject=row[5],
                created_at=row[6],
                closed_at=row[7],
            )
            for row in conversations
        ],
        previous_conversations_total=int(conversations[0][8]) if conversations else 0,
        recent_transactions=[
            RecentTransaction(
                transaction_id=external_id,
                amount=to_major(amount_minor, currency),
                amount_minor=amount_minor,
                currency=currency,
                status=status,
                description=description,
                created_at=occurred_at,
                occurred_at=occurred_at,
            )
            for external_id, amount_minor, currency, status, description, occurred_at in transactions
        ],
        open_tickets=[
            OpenTicket(ticket_id=external_id, subject=subject, status=status, url=url, updated_at=updated_at)
            for external_id, subject, status, url, updated_at in tickets
        ],
        tags=tags,
    )
