"""The console against a real server: live queue, replies through the sandbox, closing, actions."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from textual.widgets import Tab as TabWidget

from max_server.channels.whatsapp.sandbox import Sandbox
from max_tui.dialogs.close import CloseDialog
from max_tui.screens.main import MainScreen
from max_tui.state import Tab
from max_tui.widgets.composer import CONVERSATION_CLOSED, WINDOW_CLOSED
from max_tui.widgets.message import MessageItem
from tests.support.live import LiveServer
from tests.tui.conftest import Agent, Customers, api_get, ready_screen, wait_for

pytestmark = pytest.mark.anyio


def row_texts(main: MainScreen) -> list[str]:
    options = main.queue.option_list
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


async def started(pilot: Any) -> MainScreen:
    app = pilot.app
    main: MainScreen = await wait_for(pilot, lambda: app.main, "the main screen")
    await wait_for(pilot, lambda: app.live.state == "live", "the live stream")
    await wait_for(pilot, lambda: app.screen is main and main.loads, "the first load")
    return main


async def type_text(pilot: Any, text: str) -> None:
    await pilot.press(*("space" if ch == " " else ch for ch in text))


async def test_an_inbound_message_appears_in_the_queue_without_polling(
    console: Any, customers: Customers
) -> None:
    app = console()
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        assert main.queue.active_tab is Tab.MINE  # agents start on "Mine"
        loads_before = len(app.requests("GET", "/api/v1/conversations"))

        await customers.say("hola, ¿me ayudan con mi pedido?")
        await wait_for(pilot, lambda: main.ctx.store.rows(Tab.TEAM), "the new conversation in the team queue")
        await pilot.press("ctrl+t")  # Mine -> Team queue
        rows = await wait_for(pilot, lambda: row_texts(main), "the queue row")
        assert "Juan López" in rows[0]
        assert "hola, ¿me ayudan con mi pedido?" in rows[0]
        assert "WA" in rows[0] and "normal" in rows[0] and "#1" in rows[0]
        assert "Team queue 1" in str(main.query_one("#tab-team", TabWidget).label)

        # It came over the websocket: the queue was not fetched again, the stream never restarted.
        assert len(app.requests("GET", "/api/v1/conversations")) == loads_before
        assert app.live.connections == 1


async def test_a_reply_typed_in_the_composer_reaches_whatsapp_and_shows_its_ticks(
    console: Any, customers: Customers, sandbox: Sandbox, server: LiveServer
) -> None:
    app = console()
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await customers.say("hola")
        await wait_for(pilot, lambda: main.ctx.store.rows(Tab.TEAM), "the conversation")
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: row_texts(main), "the row")
        main.queue.option_list.focus()
        await pilot.press("enter")  # opens it and puts the cursor in the composer
        await wait_for(pilot, lambda: main.composer.has_focus and main.thread.message_ids, "the thread")

        await type_text(pilot, "Claro, dime.")
        await pilot.press("ctrl+j")
        await type_text(pilot, "Soy Ana.")
        await pilot.press("enter")

        sent = await wait_for(
            pilot, lambda: sandbox.sent_messages(accepted_only=True), "the send to WhatsApp"
        )
        assert sent[0]["text"]["body"] == "Claro, dime.\nSoy Ana."
        assert sent[0]["to"].lstrip("+") == "5215512345678"
        assert main.composer.text == ""  # sent, so the draft is gone

        def outbound() -> MessageItem | None:
            items = [i for i in main.thread.query(MessageItem) if i.message.direction == "outbound"]
            return items[0] if items else None

        item = await wait_for(
            pilot, lambda: (o := outbound()) and o.message.delivery_status == "sent" and o, "the sent tick"
        )
        wamid, _ = sandbox.accepted()[0]
        await asyncio.to_thread(sandbox.status_update, server.url, wamid, "read", "5215512345678")
        await wait_for(pilot, lambda: item.message.delivery_status == "read", "the read tick")
        assert "✓✓ read" in str(item.render())
        # Replying took the conversation: it is now in Mine, with the reply as its preview.
        assert [c.number for c in main.ctx.store.rows(Tab.MINE)] == [1]


async def test_closing_moves_the_conversation_out_of_mine(
    console: Any, customers: Customers, agent: Agent, server: LiveServer
) -> None:
    app = console()
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await customers.say("necesito ayuda")
        await wait_for(pilot, lambda: main.ctx.store.rows(Tab.TEAM), "the conversation")
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: row_texts(main), "the row")
        main.queue.option_list.focus()
        await pilot.press("enter")
        await pilot.press("f2")  # take it
        await wait_for(pilot, lambda: main.ctx.store.rows(Tab.MINE), "the conversation in Mine")
        await pilot.press("ctrl+t")  # Team queue -> Mine (agents have two tabs)
        assert main.queue.active_tab is Tab.MINE
        await wait_for(pilot, lambda: len(row_texts(main)) == 1, "the row in Mine")

        await pilot.press("f6")
        await wait_for(pilot, lambda: ready_screen(app, CloseDialog), "the close dialog")
        await pilot.press("down", "enter")  # "No response"
        await wait_for(pilot, lambda: not row_texts(main), "Mine to empty")
        assert main.ctx.store.rows(Tab.MINE) == []
        assert "Mine 0" in str(main.query_one("#tab-mine", TabWidget).label)
        [closed] = api_get(server, agent.token, "/api/v1/conversations", status="closed")["conversations"]
        assert closed["close_reason"] == "no_response"
        assert main.composer.border_title == CONVERSATION_CLOSED


async def test_outside_the_whatsapp_window_the_composer_says_so_and_does_not_send(
    console: Any, customers: Customers, sandbox: Sandbox
) -> None:
    import time

    app = console()
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await customers.say_at("¿siguen ahí?", time.time() - 25 * 3600)
        await wait_for(pilot, lambda: main.ctx.store.rows(Tab.TEAM), "the conversation")
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: row_texts(main), "the row")
        main.queue.option_list.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: main.composer.has_focus, "the composer")
        assert main.composer.border_title == WINDOW_CLOSED
        await type_text(pilot, "hola")
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert main.composer.text == "hola"  # kept, not sent
        assert app.requests("POST", "/messages") == []
        assert sandbox.sent_messages() == []
