"""Against a real server: Ctrl+F searches on the server (a match older than the 500 newest
conversations is found and opens); Ctrl+R resends a failed send as a new message (WhatsApp gets
it again; the original stays, marked resent), and asks first when the send is ``unknown``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from max_server import clock
from max_server.channels.whatsapp.sandbox import Sandbox
from max_server.db import Database
from max_server.models import Conversation, Customer, Message
from max_server.services import channels
from max_tui.dialogs.confirm import ConfirmDialog
from max_tui.dialogs.search import SearchDialog
from max_tui.widgets.footer import FittedFooter
from max_tui.widgets.message import MessageItem
from tests.conftest import People
from tests.support import factories
from tests.support.live import LiveServer
from tests.tui.conftest import Agent, Customers, api_get, ready_screen, wait_for
from tests.tui.test_live_console import started, type_text
from tests.tui.test_media_burst_console import open_only_conversation

pytestmark = pytest.mark.anyio
ARCHIVE = 520


def archive(db: Database, sandbox: Sandbox, agent: Agent, count: int) -> Conversation:
    """``count`` closed conversations of the agent's team, oldest first; returns the oldest."""
    now = clock.now()
    with db.session() as session:
        account = channels.find_account(session, sandbox.phone_number_id)
        customers = [Customer(name="Zacarías Antiguo" if n == 0 else f"Cliente {n}") for n in range(count)]
        session.add_all(customers)
        session.flush()
        rows = [
            Conversation(
                number=1000 + n,
                customer_id=customer.id,  # type: ignore[arg-type]
                channel_account_id=account.id,  # type: ignore[arg-type]
                team_id=agent.team.id,
                status="closed",
                close_reason="resolved",
                first_message_at=now - timedelta(days=count - n),
                last_message_at=now - timedelta(days=count - n),
                closed_at=now - timedelta(days=count - n),
                created_at=now - timedelta(days=count - n),
            )
            for n, customer in enumerate(customers)
        ]
        session.add_all(rows)
        session.commit()
        return rows[0]


async def test_search_finds_a_conversation_older_than_the_newest_500(
    console: Any, db: Database, sandbox: Sandbox, agent: Agent, server: LiveServer
) -> None:
    oldest = archive(db, sandbox, agent, ARCHIVE)
    newest_500 = api_get(server, agent.token, "/api/v1/conversations", status="all", limit=500)
    assert str(oldest.id) not in {c["id"] for c in newest_500["conversations"]}  # out of reach before
    app = console()
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await pilot.press("ctrl+f")
        dialog = await wait_for(pilot, lambda: ready_screen(app, SearchDialog), "the search dialog")
        await wait_for(pilot, lambda: dialog.searched == "", "the recent conversations")
        await type_text(pilot, "antiguo")
        await wait_for(pilot, lambda: dialog.searched == "antiguo", "the server's answer")
        assert [c.number for c in dialog.results] == [oldest.number]
        asked = [e for e in app.recorder.exchanges if e.path == "/api/v1/conversations" and e.params.get("q")]
        # Debounced: the server was asked about the whole word, not once per keystroke.
        assert [e.params["q"] for e in asked] == ["antiguo"]
        await pilot.press("enter")
        await wait_for(pilot, lambda: main.current_id == str(oldest.id), "the old conversation, open")
        assert "Zacarías Antiguo" in str(main.query_one("#thread-header").render())


def outbound_items(main: Any) -> list[MessageItem]:
    return [i for i in main.thread.query(MessageItem) if i.message.direction == "outbound"]


async def test_ctrl_r_resends_a_failed_message_as_a_new_one(
    console: Any, customers: Customers, sandbox: Sandbox, server: LiveServer, agent: Agent
) -> None:
    app = console()
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await customers.say("hola")
        await open_only_conversation(pilot, main)
        footer = main.query_one(FittedFooter)
        assert main.check_action("resend", ()) is False  # nothing to resend: not in the footer
        sandbox.refuse_next(code=131026, message="Message undeliverable")
        await type_text(pilot, "Tu pedido salió hoy")
        await pilot.press("enter")
        failed = await wait_for(
            pilot,
            lambda: [i for i in outbound_items(main) if i.message.delivery_status == "failed"],
            "the failed send",
        )
        assert "✗ failed — 131026" in str(failed[0].render()) and "^R resends" in str(failed[0].render())
        await wait_for(pilot, lambda: main.check_action("resend", ()) is True, "Resend offered")
        await wait_for(pilot, lambda: any(k.action == "resend" for k in footer.query("FooterKey")), "the key")

        await pilot.press("ctrl+r")
        sent = await wait_for(pilot, lambda: sandbox.sent_messages(accepted_only=True), "the resend")
        assert [m["text"]["body"] for m in sent] == ["Tu pedido salió hoy"]
        await wait_for(pilot, lambda: len(outbound_items(main)) == 2, "the new message in the thread")
        original, copy = outbound_items(main)
        await wait_for(pilot, lambda: copy.message.delivery_status == "sent", "the copy's tick")
        assert original.message.delivery_status == "failed" and "resent" in original.message.flags
        assert " · resent" in str(original.render()) and "^R resends" not in str(original.render())
        thread = api_get(server, agent.token, f"/api/v1/conversations/{main.current_id}/messages")["messages"]
        assert [(m["content_text"], m["delivery_status"], m["flags"]) for m in thread[1:]] == [
            ("Tu pedido salió hoy", "failed", ["resent"]),
            ("Tu pedido salió hoy", "sent", []),
        ]
        await wait_for(pilot, lambda: main.check_action("resend", ()) is False, "Resend gone")
        await pilot.press("ctrl+r")  # nothing left to resend: the key does nothing
        await pilot.pause()
        assert len(app.requests("POST", "/resend")) == 1
        assert len(sandbox.sent_messages(accepted_only=True)) == 1


async def test_an_unknown_send_is_resent_only_after_confirming(
    console: Any, db: Database, sandbox: Sandbox, agent: Agent, people: People
) -> None:
    conversation = factories.conversation(
        db,
        team=agent.team,
        assignee=agent.user,
        customer_row=factories.customer(db, "Rosa"),
        account=factories.channel_account(db, external_id=sandbox.phone_number_id),
    )
    with db.session() as session:
        from max_server.models import CustomerIdentity

        session.add(
            CustomerIdentity(
                customer_id=conversation.customer_id, channel="whatsapp", external_id="5215598765432"
            )
        )
        session.commit()
    factories.message(db, conversation, "hola")
    unknown = factories.message(
        db,
        conversation,
        "¿Te llegó la factura?",
        direction="outbound",
        sender_type="agent",
        sender_user_id=agent.user.id,
        delivery_status="unknown",
        error={
            "code": None,
            "title": "delivery unknown",
            "message": "no answer from WhatsApp",
            "details": None,
        },
    )
    app = console()
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await main.open_conversation(str(conversation.id))
        item = await wait_for(pilot, lambda: main.thread.item(str(unknown.id)), "the unknown message")
        assert item.can_focus and "? unknown" in str(item.render())
        item.focus()
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: ready_screen(app, ConfirmDialog), "the confirmation")
        await pilot.press("n")  # it may have arrived: the agent checks first
        await wait_for(pilot, lambda: app.screen is main, "back")
        assert app.requests("POST", "/resend") == []
        item.focus()
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: ready_screen(app, ConfirmDialog), "the confirmation again")
        await pilot.press("y")
        sent = await wait_for(pilot, lambda: sandbox.sent_messages(accepted_only=True), "the resend")
        assert sent[0]["text"]["body"] == "¿Te llegó la factura?"
        with db.session(write=False) as session:
            assert session.get(Message, unknown.id).flags == ["resent"]  # type: ignore[union-attr]
