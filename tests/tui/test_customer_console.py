"""The customer sidebar and identity links, against a real server: the context document beside
the conversation; the link dialog (suggestions first, a preview, confirm) links two customers and
the sidebar shows both identities; "Undo link" restores them; tags edited here or by someone else
show up live; an earlier conversation opens read-only."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from textual.widgets import Button, OptionList, Static

from max_server.db import Database
from max_server.models import ChannelAccount, Customer
from max_tui.dialogs.confirm import ConfirmDialog
from max_tui.dialogs.history import HistoryDialog
from max_tui.dialogs.link import LinkDialog
from max_tui.dialogs.tags import TagsDialog
from max_tui.state import Tab
from max_tui.widgets.context import ContextPane
from tests.conftest import People, bearer
from tests.support import factories
from tests.support.live import LiveServer
from tests.tui.conftest import Agent, Customers, api_get, ready_screen, wait_for
from tests.tui.test_live_console import started, type_text

pytestmark = pytest.mark.anyio
JUAN, JUAN_NEW_FORM = "5215512345678", "525512345678"  # Mexico's legacy mobile form and today's


def sidebar_text(main: Any) -> str:
    pane = main.query_one(ContextPane)
    return "\n".join(str(w.render()) for w in pane.query(Static) if w.display)


async def open_conversation_of(pilot: Any, main: Any, name: str) -> None:
    rows = await wait_for(pilot, lambda: main.ctx.store.rows(Tab.TEAM), "the conversations")
    target = next(c for c in rows if c.customer.name == name)
    await main.open_conversation(target.id, focus_composer=True)
    await wait_for(pilot, lambda: main.customer.loads, "the customer sidebar")


async def test_link_two_customers_then_undo_from_the_sidebar(
    console: Any, customers: Customers, server: LiveServer, agent: Agent
) -> None:
    app = console()
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await customers.say("hola, soy Juan", wa_id=JUAN, name="Juan López")
        await customers.say("¿siguen ahí?", wa_id=JUAN_NEW_FORM, name="Juan L.")
        await wait_for(pilot, lambda: len(main.ctx.store.rows(Tab.TEAM)) == 2, "both conversations")
        await open_conversation_of(pilot, main, "Juan López")
        assert "WhatsApp 5215512345678" in sidebar_text(main)
        assert "525512345678" not in sidebar_text(main)
        assert main.current is not None
        primary_id = main.current.customer.id

        await pilot.press("ctrl+l")
        dialog = await wait_for(pilot, lambda: ready_screen(app, LinkDialog), "the link dialog")
        # Suggestions first: the same phone in its legacy form, with the reason.
        await wait_for(pilot, lambda: dialog.candidates, "the suggestions")
        [suggested] = dialog.suggestions
        assert suggested.customer.name == "Juan L." and suggested.reasons[0].kind == "phone"
        preview = dialog.query_one("#link-preview", Static)
        await wait_for(pilot, lambda: "will be linked into" in str(preview.render()), "the preview")
        assert "WhatsApp 525512345678" in str(preview.render())
        assert "1 conversation(s)" in str(preview.render())
        await pilot.press("down", "enter")  # from the search field to the list, then choose it
        await wait_for(pilot, lambda: dialog.query_one("#link-confirm", Button).has_focus, "the Link button")
        await pilot.press("enter")

        await wait_for(pilot, lambda: "525512345678" in sidebar_text(main), "both identities in the sidebar")
        text = sidebar_text(main)
        assert "WhatsApp 5215512345678" in text and "WhatsApp 525512345678" in text
        assert "Linked" in text and "Juan L." in text
        [link] = api_get(server, agent.token, f"/api/v1/customers/{primary_id}/links")["links"]
        assert link["unlinked_at"] is None

        undo = main.query_one("#context-undo", Button)
        assert undo.display
        await pilot.click("#context-undo")
        await wait_for(pilot, lambda: ready_screen(app, ConfirmDialog), "the confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: "525512345678" not in sidebar_text(main), "the identity to go back")
        assert "WhatsApp 5215512345678" in sidebar_text(main)
        assert not main.query_one("#context-undo", Button).display
        [undone] = api_get(server, agent.token, f"/api/v1/customers/{primary_id}/links")["links"]
        assert undone["unlinked_at"] is not None
        both = api_get(server, agent.token, "/api/v1/customers", q=JUAN_NEW_FORM)["customers"]
        assert {c["name"]: c["is_active"] for c in both} == {"Juan L.": True, "Juan López": True}


async def test_tags_edited_here_or_elsewhere_show_live_and_history_opens_read_only(
    console: Any, customers: Customers, server: LiveServer, people: People, db: Database, agent: Agent
) -> None:
    app = console()
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await customers.say("otra vez yo")
        [current] = await wait_for(pilot, lambda: main.ctx.store.rows(Tab.TEAM), "the conversation")
        with db.session() as session:  # an earlier conversation of the same customer, closed
            customer = session.get(Customer, int(current.customer.id))
            account = session.get(ChannelAccount, int(current.channel_account_id))
        earlier = factories.conversation(
            db,
            team=agent.team,
            customer_row=customer,
            account=account,
            status="closed",
            close_reason="resolved",
        )
        factories.message(db, earlier, "¿Tienen envío a Monterrey?")
        _, admin = people.user("admin", "Ada")
        await open_conversation_of(pilot, main, "Juan López")
        assert "VIP" not in sidebar_text(main)

        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: ready_screen(app, TagsDialog), "the tags dialog")
        await type_text(pilot, "VIP")
        await pilot.press("enter")
        await type_text(pilot, "Mayoreo")
        await pilot.press("enter", "ctrl+s")
        await wait_for(
            pilot,
            lambda: "VIP · Mayoreo" in sidebar_text(main) or "Mayoreo · VIP" in sidebar_text(main),
            "the new tags",
        )

        # Someone else removes one: the customer.tagged event refreshes the sidebar.
        assert main.current is not None
        customer_id = main.current.customer.id
        httpx.delete(
            f"{server.url}/api/v1/customers/{customer_id}/tags",
            params={"tag": "Mayoreo"},
            headers=bearer(admin),
        ).raise_for_status()
        await wait_for(pilot, lambda: "Mayoreo" not in sidebar_text(main), "the removed tag to go")
        assert "VIP" in sidebar_text(main)

        # The earlier (closed) conversation is listed and opens read-only.
        history = main.query_one("#context-history", OptionList)
        assert history.option_count == 1
        history.focus()
        await pilot.press("enter")
        dialog = await wait_for(pilot, lambda: ready_screen(app, HistoryDialog), "the read-only view")
        await wait_for(pilot, lambda: dialog.query_one("#history-thread").message_ids, "its messages")
        assert not dialog.query("Composer")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is main, "back")


def test_tag_changes_are_announced_as_customer_tagged_events(
    server: LiveServer, agent: Agent, people: People, db: Database
) -> None:
    """The server change the sidebar's live refresh needs: ``customer.tagged`` when tags change
    (not when a call changes nothing), to those who may see the customer."""
    customer = factories.customer(db, "Lucía")
    factories.conversation(db, team=agent.team, customer_row=customer)
    _, outsider = people.user("agent", "Otto")  # no team: may not see Lucía
    tags = f"{server.url}/api/v1/customers/{customer.id}/tags"

    def tagged(token: str) -> list[dict[str, Any]]:
        listed = api_get(server, token, "/api/v1/events", limit=500)["events"]
        return [e["data"] for e in listed if e["type"] == "customer.tagged"]

    httpx.post(tags, json={"tags": ["VIP", "Mayoreo"]}, headers=bearer(agent.token)).raise_for_status()
    httpx.post(tags, json={"tags": ["VIP"]}, headers=bearer(agent.token)).raise_for_status()  # no change
    httpx.delete(tags, params={"tag": ["Mayoreo", "nunca"]}, headers=bearer(agent.token)).raise_for_status()
    httpx.delete(tags, params={"tag": "nunca"}, headers=bearer(agent.token)).raise_for_status()  # no change

    def seen() -> list[dict[str, Any]]:
        return tagged(agent.token)

    deadline = time.monotonic() + 10
    while len(seen()) < 2 and time.monotonic() < deadline:  # the sequencer numbers them
        time.sleep(0.05)
    assert seen() == [{"customer_id": str(customer.id)}] * 2  # the tags themselves are personal data
    assert tagged(outsider) == []
