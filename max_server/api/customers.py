"""Customers: search, the context document, links (merges) and their undo, what other systems
feed (transactions, tickets), tags, and erasure.

Who may do what: agents see and link the customers of the conversations they may see (admins
see all); undoing a link takes whoever made it, a supervisor or an admin; transactions and
tickets are written by other systems with an admin token; erasure is admin-only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from max_server.api.deps import AdminActor, AgentActor, SessionDep
from max_server.errors import Unprocessable
from max_server.schemas import (
    CustomerContext,
    CustomerList,
    CustomerPublic,
    ErasureResult,
    LinkCreate,
    LinkList,
    LinkPublic,
    SuggestionList,
    TagList,
    TagsBody,
    TicketPut,
    TransactionPut,
)
from max_server.schemas.customers import NUL_FREE, TicketUpserted, TransactionUpserted
from max_server.services import context, customer_feeds, customers, erasure, link_journal, links
from max_server.services.pagination import cursor_int, encode_cursor

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])

Limit = Annotated[int, Query(ge=1, le=500)]
BIGINT = 2**63 - 1  # ids beyond the column's range are simply not found, not a 500
CustomerId = Annotated[int, Path(ge=1, le=BIGINT, description="a customer id")]
ExternalId = Annotated[
    str, Path(min_length=1, max_length=128, pattern=NUL_FREE, description="the other system's id")
]


@router.get("", response_model=CustomerList)
def list_customers(
    session: SessionDep,
    actor: AgentActor,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=NUL_FREE,
            description="name, email, phone (any written form) or a channel id",
        ),
    ] = None,
    include_inactive: Annotated[bool, Query(description="also linked-away and erased customers")] = False,
    cursor: str | None = None,
    limit: Limit = 50,
) -> CustomerList:
    """The customers you may see, newest first; ``q`` searches them."""
    rows, next_id = customers.search(
        session, actor, q, include_inactive=include_inactive, before_id=cursor_int(cursor), limit=limit
    )
    return CustomerList(
        customers=customers.present(session, rows),
        next_cursor=encode_cursor(id=next_id) if next_id else None,
    )


@router.get("/by-identity", response_model=CustomerPublic)
def by_identity(
    session: SessionDep,
    actor: AgentActor,
    channel: Annotated[str, Query(pattern="^(whatsapp|chat_app)$")],
    external_id: Annotated[str, Query(min_length=1, max_length=128, pattern=NUL_FREE)],
) -> CustomerPublic:
    """The customer behind a channel identity (a WhatsApp number in any written form, a Chat App
    customer id), following links. Other systems call it with an admin token; agents get only
    customers they may see."""
    return customers.present_one(session, customers.by_identity(session, actor, channel, external_id))


@router.get("/links", response_model=LinkList)
def list_links(
    session: SessionDep,
    actor: AgentActor,
    customer: Annotated[int | None, Query(ge=1, le=BIGINT, description="only this customer's links")] = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> LinkList:
    """Links newest first, undone ones included (``unlinked_at`` set)."""
    rows, next_id = link_journal.list_links(
        session, actor, customer, before_id=cursor_int(cursor), limit=limit
    )
    return LinkList(
        links=link_journal.present_links(session, rows),
        next_cursor=encode_cursor(id=next_id) if next_id else None,
    )


@router.post("/links/{link_id}/undo", response_model=LinkPublic)
def undo_link(
    session: SessionDep, actor: AgentActor, link_id: Annotated[int, Path(ge=1, le=BIGINT)]
) -> LinkPublic:
    """Restores both customers exactly as they were before the link (whoever linked, a
    supervisor or an admin). Conversations opened after the link that reply to a returning
    identity go back with it."""
    journal = links.undo(session, actor, link_id)
    return link_journal.present_link(session, journal)


@router.get("/{customer_id}", response_model=CustomerPublic)
def read_customer(session: SessionDep, actor: AgentActor, customer_id: CustomerId) -> CustomerPublic:
    """A customer with identities and tags; ``merged_into_id`` is set when it was linked into
    another."""
    return customers.present_one(session, customers.get_visible(session, actor, customer_id))


@router.get("/{customer_id}/context", response_model=CustomerContext)
def read_context(
    session: SessionDep,
    actor: AgentActor,
    customer_id: CustomerId,
    limit: Annotated[int, Query(ge=1, le=context.MAX_LIMIT)] = context.DEFAULT_LIMIT,
    exclude_conversation_id: Annotated[
        int | None, Query(ge=1, le=BIGINT, description="leave out this conversation (the one on screen)")
    ] = None,
) -> Response:
    """The context panel's document: the customer with identities, previous conversations (most
    recent first, with the total), recent transactions, open tickets and tags."""
    document = context.build(
        session, actor, customer_id, limit=limit, exclude_conversation_id=exclude_conversation_id
    )
    # Built and validated once as a CustomerContext; serialised directly (the panel is hot).
    return Response(document.model_dump_json(), media_type="application/json")


@router.get("/{customer_id}/links", response_model=LinkList)
def customer_links(
    session: SessionDep,
    actor: AgentActor,
    customer_id: CustomerId,
    cursor: str | None = None,
    limit: Limit = 50,
) -> LinkList:
    return list_links(session, actor, customer_id, cursor, limit)


@router.get("/{customer_id}/link-suggestions", response_model=SuggestionList)
def link_suggestions(session: SessionDep, actor: AgentActor, customer_id: CustomerId) -> SuggestionList:
    """Active customers sharing a normalised phone (legacy Mexican/Argentine mobile forms
    included) or an email with this one, with the reasons; at most
    ``customers.MAX_SUGGESTIONS``, in one page (``next_cursor`` is null)."""
    return SuggestionList(suggestions=customers.suggestions(session, actor, customer_id), next_cursor=None)


@router.post("/{customer_id}/link", response_model=LinkPublic, status_code=status.HTTP_201_CREATED)
def link_customers(
    session: SessionDep, actor: AgentActor, customer_id: CustomerId, body: LinkCreate
) -> LinkPublic:
    """Links ``secondary_customer_id`` into this customer in one transaction (identities,
    conversations, tags, transactions and tickets move here; this customer's empty fields are
    filled; the secondary is deactivated). 409 for an inactive or erased customer or a cycle."""
    if not body.secondary_customer_id.isdecimal() or not 0 < int(body.secondary_customer_id) <= BIGINT:
        raise Unprocessable("secondary_customer_id must be a customer id", code="invalid_customer_id")
    journal = links.link(session, actor, customer_id, int(body.secondary_customer_id))
    return link_journal.present_link(session, journal)


@router.put("/{customer_id}/transactions/{external_id}", response_model=TransactionUpserted)
def put_transaction(
    session: SessionDep,
    actor: AdminActor,
    customer_id: CustomerId,
    external_id: ExternalId,
    body: TransactionPut,
    response: Response,
) -> TransactionUpserted:
    """Creates (201) or updates (200) the transaction the other system knows as ``external_id``.
    Idempotent: the same body twice changes nothing (``outcome`` says which happened)."""
    row, outcome = customer_feeds.put_transaction(session, actor, customer_id, external_id, body)
    response.status_code = status.HTTP_201_CREATED if outcome == "created" else status.HTTP_200_OK
    shown = customer_feeds.present_transaction(row)
    return TransactionUpserted.model_validate({**shown.model_dump(), "outcome": outcome})


@router.put("/{customer_id}/tickets/{external_id}", response_model=TicketUpserted)
def put_ticket(
    session: SessionDep,
    actor: AdminActor,
    customer_id: CustomerId,
    external_id: ExternalId,
    body: TicketPut,
    response: Response,
) -> TicketUpserted:
    """Creates (201) or updates (200) the ticket ``external_id`` (``outcome``: created, updated
    or unchanged); closed statuses (closed, solved, resolved, done, cancelled) leave the
    context's open tickets."""
    row, outcome = customer_feeds.put_ticket(session, actor, customer_id, external_id, body)
    response.status_code = status.HTTP_201_CREATED if outcome == "created" else status.HTTP_200_OK
    shown = customer_feeds.present_ticket(row)
    return TicketUpserted.model_validate({**shown.model_dump(), "outcome": outcome})


@router.post("/{customer_id}/tags", response_model=TagList)
def add_tags(session: SessionDep, actor: AgentActor, customer_id: CustomerId, body: TagsBody) -> TagList:
    return TagList(tags=customer_feeds.add_tags(session, actor, customer_id, body.tags))


@router.delete("/{customer_id}/tags", response_model=TagList)
def remove_tags(
    session: SessionDep,
    actor: AgentActor,
    customer_id: CustomerId,
    tag: Annotated[list[str], Query(min_length=1, description="repeat for several: ?tag=A&tag=B")],
) -> TagList:
    if any("\x00" in t for t in tag):
        raise Unprocessable("a tag must not contain NUL characters", code="invalid_tag")
    return TagList(
        tags=customer_feeds.remove_tags(session, actor, customer_id, [" ".join(t.split()) for t in tag])
    )


@router.post("/{customer_id}/erase", response_model=ErasureResult)
def erase_customer(session: SessionDep, actor: AdminActor, customer_id: CustomerId) -> ErasureResult:
    """Erases the customer's personal data (and that of customers linked into it), keeping
    anonymous conversations and messages for reports. Audited; cannot be undone."""
    return erasure.erase(session, actor, customer_id)
