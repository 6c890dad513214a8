"""The conversation search behind ``GET /api/v1/conversations?q=``: the customer (name, email,
phone in any written form, a channel identity such as the WhatsApp number), ``#number`` or
``number``, the subject, and the text of recent messages. Case-insensitive on both databases.

What it costs, whatever the archive's size: the customer part is the customer search's own
clause (``customers.matching``) evaluated once as a set; the number is a unique index; message
text is searched among the newest ``MESSAGE_WINDOW`` messages only (a range of the primary key:
older message text is not searched, the customer, number and subject of old conversations
are). The caller adds the visibility filter and pages by id as for any list.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, func, or_, select
from sqlmodel import col

from max_server.models import Conversation, Customer, Message
from max_server.services import customers

MESSAGE_WINDOW = 100_000  # the newest messages whose text is searched
MAX_QUERY = 200  # characters (the API refuses longer queries)
MAX_NUMBER = 2**31 - 1  # conversation numbers are 32-bit integers


def _number(digits: str) -> int | None:
    return int(digits) if digits.isascii() and digits.isdigit() and int(digits) <= MAX_NUMBER else None


def _message_floor() -> ColumnElement[int]:
    """The id below which message text is not searched (0 while there are fewer messages)."""
    newest_first = select(col(Message.id)).order_by(col(Message.id).desc()).offset(MESSAGE_WINDOW).limit(1)
    return func.coalesce(newest_first.scalar_subquery(), 0)


def matching(text: str) -> ColumnElement[bool]:
    """SQL over ``Conversation``: it matches ``text`` (stripped, not empty). ``#123`` means the
    conversation number only; a bare ``123`` also matches phones, ids and text containing it."""
    hashed = text.removeprefix("#").strip()
    if text.startswith("#") and hashed.isascii() and hashed.isdigit():
        wanted = _number(hashed)
        return false() if wanted is None else col(Conversation.number) == wanted
    pattern = f"%{customers.escape_like(text.lower())}%"
    by_customer = select(col(Customer.id)).where(customers.matching(text))
    by_message = select(col(Message.conversation_id)).where(
        col(Message.id) > _message_floor(),
        func.lower(Message.content_text).like(pattern, escape="\\"),
    )
    clauses: list[ColumnElement[bool]] = [
        col(Conversation.customer_id).in_(by_customer),
        func.lower(Conversation.subject).like(pattern, escape="\\"),
        col(Conversation.id).in_(by_message),
    ]
    number = _number(text)
    if number is not None:
        clauses.append(col(Conversation.number) == number)
    return or_(*clauses)
