"""Two links racing on the same customers (A←B and B←A at once): one wins, the other is refused,
and the data stays consistent. Real threads, real transactions, on both databases."""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import func
from sqlmodel import col, select

from max_server.access import Actor
from max_server.db import Database
from max_server.errors import Conflict
from max_server.models import Conversation, Customer, CustomerIdentity, IdentityLink
from max_server.services import links
from tests.customers.conftest import Desk
from tests.support import factories

ADMIN = Actor.system("race")
PAIRS = 8
SECONDARY_WA = "5215544443333"


def _pair(db: Database, n: int) -> tuple[int, int]:
    account = factories.channel_account(db)
    ids = []
    for side in ("a", "b"):
        customer = factories.customer(db, f"{side}{n}")
        factories.conversation(db, customer_row=customer, account=account)
        assert customer.id is not None
        with db.session() as session:
            session.add(
                CustomerIdentity(customer_id=customer.id, channel="whatsapp", external_id=f"52155{n}{side}")
            )
            session.commit()
        ids.append(customer.id)
    return ids[0], ids[1]


def _race(db: Database, a: int, b: int) -> list[str]:
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt(primary: int, secondary: int) -> None:
        with db.session() as session:
            barrier.wait()
            try:
                links.link(session, ADMIN, primary, secondary)
                outcomes.append("linked")
            except Conflict as refused:
                outcomes.append(refused.code)

    threads = [threading.Thread(target=attempt, args=pair) for pair in ((a, b), (b, a))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_racing_links_one_wins_one_is_refused(db: Database) -> None:
    pairs = [_pair(db, n) for n in range(PAIRS)]
    for a, b in pairs:
        outcomes = _race(db, a, b)
        assert Counter(outcomes) == Counter({"linked": 1, "link_cycle": 1}), outcomes
    with db.session(write=False) as session:
        for a, b in pairs:
            customers = {c.id: c for c in session.exec(select(Customer).where(col(Customer.id).in_([a, b])))}
            active = [c for c in customers.values() if c.is_active]
            assert len(active) == 1
            winner = active[0]
            loser = customers[b if winner.id == a else a]
            assert loser.merged_into_id == winner.id
            owners = set(
                session.exec(
                    select(CustomerIdentity.customer_id).where(col(CustomerIdentity.customer_id).in_([a, b]))
                )
            )
            assert owners == {winner.id}
            conversations = set(
                session.exec(
                    select(Conversation.customer_id).where(col(Conversation.customer_id).in_([a, b]))
                )
            )
            assert conversations == {winner.id}
            open_ones = session.exec(
                select(func.count())
                .select_from(Conversation)
                .where(Conversation.customer_id == winner.id, Conversation.status != "closed")
            ).one()
            assert open_ones == 1  # the loser's was closed as a duplicate
        journal = session.exec(select(func.count()).select_from(IdentityLink)).one()
    assert journal == PAIRS


def test_a_message_arriving_during_a_link_joins_the_primary(desk: Desk, db: Database) -> None:
    """The link holds its locks while a message from the secondary's number arrives: the message
    waits, then lands on the primary (never on the customer the link just deactivated)."""
    desk.wa("hola", wa_id=SECONDARY_WA, name="Beto")
    secondary = int(desk.customer_by("whatsapp", SECONDARY_WA)["id"])
    for conversation in desk.conversations(str(secondary)):
        desk.close(conversation["id"])
    desk.new_conversation_later()
    desk.chat("cust_primary", "hola", name="Beto")
    primary = int(desk.customer_by("chat_app", "cust_primary")["id"])
    linking, proceed = threading.Event(), threading.Event()

    def link_slowly() -> None:
        with db.session() as session:
            commit = session.commit

            def held_commit() -> None:
                linking.set()
                proceed.wait(30)
                commit()

            session.commit = held_commit  # type: ignore[method-assign]
            links.link(session, ADMIN, primary, secondary)

    linker = threading.Thread(target=link_slowly)
    linker.start()
    assert linking.wait(30)
    message = threading.Thread(
        target=desk.wa, args=("escribo durante el link",), kwargs={"wa_id": SECONDARY_WA}
    )
    message.start()
    message.join(timeout=1.5)
    assert message.is_alive()  # waiting for the link's locks
    proceed.set()
    linker.join(timeout=30)
    message.join(timeout=30)
    with db.session(write=False) as session:
        newest = session.exec(select(Conversation).order_by(col(Conversation.id).desc())).first()
        assert newest is not None
        assert (newest.customer_id, newest.status) == (primary, "queued")
        stranded = session.exec(
            select(Conversation).where(Conversation.customer_id == secondary, Conversation.status != "closed")
        ).all()
    assert stranded == []
