"""The identity-link dialog and the sidebar against a real server: a preview that arrives late for a
candidate the agent has left never stands for the highlighted one (nor gets linked); the search
finds customers by email, by phone in another written form, and by id; a link made by someone
else (through the API) refreshes the open sidebar live."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from textual.widgets import Button, Input, OptionList, Static

from max_server.db import Database
from max_server.models import Customer
from max_tui.dialogs.link import LinkDialog
from max_tui.state import Tab
from tests.conftest import People, bearer
from tests.support.live import LiveServer
from tests.tui.conftest import Agent, Customers, api_get, ready_screen, wait_for
from tests.tui.test_customer_console import open_conversation_of, sidebar_text
from tests.tui.test_live_console import started, type_text

pytestmark = pytest.mark.anyio
JUAN = "5215512345678"


def customer_id_of(main: Any, name: str) -> str:
    return next(c.customer.id for c in main.ctx.store.conversations.values() if c.customer.name == name)


def set_customer(db: Database, customer_id: str, **fields: Any) -> None:
    with db.session() as session:
        row = session.get(Customer, int(customer_id))
        assert row is not None
        for key, value in fields.items():
            setattr(row, key, value)
        session.add(row)
        session.commit()


def preview_text(dialog: LinkDialog) -> str:
    return str(dialog.query_one("#link-preview", Static).render())


def previews_running(app: Any) -> bool:
    return any(w.group == "link-preview" and not w.is_finished for w in app.screen.workers)


async def test_a_late_preview_never_stands_for_another_candidate(
    console: Any, customers: Customers, server: LiveServer, agent: Agent, db: Database
) -> None:
    app = console()
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await customers.say("hola, soy Juan", wa_id=JUAN, name="Juan López")
        await customers.say("soy Alicia", wa_id="5215511110001", name="Alicia")
        await customers.say("soy Bruno", wa_id="5215511110002", name="Bruno")
        await wait_for(pilot, lambda: len(main.ctx.store.rows(Tab.TEAM)) == 3, "three conversations")
        alicia, bruno = customer_id_of(main, "Alicia"), customer_id_of(main, "Bruno")
        for candidate in (alicia, bruno):  # both share Juan's email: both are suggested
            set_customer(db, candidate, email="juan@example.com")
        set_customer(db, customer_id_of(main, "Juan López"), email="juan@example.com")
        await open_conversation_of(pilot, main, "Juan López")

        await pilot.press("ctrl+l")
        dialog = await wait_for(pilot, lambda: ready_screen(app, LinkDialog), "the link dialog")
        await wait_for(pilot, lambda: len(dialog.candidates) == 2, "the two suggestions")
        first, second = list(dialog.candidates)
        names = {alicia: "Alicia", bruno: "Bruno"}
        await wait_for(pilot, lambda: dialog.previewed == first, "the first preview")
        assert f"{names[first]} will be linked into" in preview_text(dialog)

        # The second candidate's preview is slow (held on the wire until the test lets it go).
        gate = asyncio.Event()
        held = f"/api/v1/customers/{second}/context"
        app.recorder.hold = lambda request: gate if request.url.path == held else None
        await pilot.press("down")
        await wait_for(pilot, lambda: ("GET", held) in app.recorder.log, "the slow preview's request")
        assert dialog.query_one("#link-confirm", Button).disabled  # nothing to link while it loads
        await pilot.press("up")  # back to the first before the second's preview came
        await wait_for(
            pilot,
            lambda: dialog.previewed == first and not dialog.query_one("#link-confirm", Button).disabled,
            "the first candidate's preview again",
        )
        gate.set()  # the second's answer may arrive now: too late to count
        await wait_for(pilot, lambda: not previews_running(app), "the late preview to settle")
        await pilot.pause(0.1)
        assert dialog.highlighted_id == first and dialog.previewed == first
        assert f"{names[first]} will be linked into" in preview_text(dialog)
        assert names[second] not in preview_text(dialog)

        await pilot.press("enter")  # from the search field to the Link button
        await wait_for(pilot, lambda: dialog.query_one("#link-confirm", Button).has_focus, "the Link button")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is main, "the dialog to close")
        primary = customer_id_of(main, "Juan López")
        links = await wait_for(
            pilot,
            lambda: api_get(server, agent.token, f"/api/v1/customers/{primary}/links")["links"],
            "the link",
        )
        assert [link["secondary_customer_id"] for link in links] == [first]


async def test_the_link_search_finds_by_email_phone_and_id(
    console: Any, customers: Customers, db: Database
) -> None:
    app = console()
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await customers.say("hola", wa_id=JUAN, name="Juan López")
        await customers.say("soy Rosa", wa_id="5215598765432", name="Rosa")
        await wait_for(pilot, lambda: len(main.ctx.store.rows(Tab.TEAM)) == 2, "both conversations")
        rosa = customer_id_of(main, "Rosa")
        set_customer(db, rosa, email="rosa.mendez@correo.mx")
        await open_conversation_of(pilot, main, "Juan López")
        await pilot.press("ctrl+l")
        dialog = await wait_for(pilot, lambda: ready_screen(app, LinkDialog), "the link dialog")
        await wait_for(pilot, lambda: "No suggestions" in preview_text(dialog), "no suggestion")
        assert dialog.candidates == {}  # Rosa shares nothing with Juan

        search = dialog.query_one("#link-search", Input)
        for query in ("rosa.mendez@correo", "+52 55 9876 5432", "55-9876-5432", rosa):
            search.value = ""
            await wait_for(pilot, lambda: not dialog.found, "the list to empty")
            await type_text(pilot, query)
            await wait_for(pilot, lambda: list(dialog.candidates)[:1] == [rosa], f"Rosa found by {query!r}")
            if query != rosa:  # a bare id may also be part of someone's number: it comes first
                assert [c.id for c in dialog.found] == [rosa]
            first = dialog.query_one("#link-candidates", OptionList).get_option_at_index(0)
            assert f"#{rosa}" in str(first.prompt) and "Rosa" in str(first.prompt)


async def test_a_link_made_by_someone_else_refreshes_the_sidebar_live(
    console: Any, customers: Customers, server: LiveServer, people: People
) -> None:
    _, admin = people.user("admin", "Ada")
    app = console()
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await customers.say("hola", wa_id=JUAN, name="Juan López")
        await customers.say("soy yo otra vez", wa_id="5215544443333", name="Juan (otro número)")
        await wait_for(pilot, lambda: len(main.ctx.store.rows(Tab.TEAM)) == 2, "both conversations")
        other = customer_id_of(main, "Juan (otro número)")
        await open_conversation_of(pilot, main, "Juan López")
        assert "5215544443333" not in sidebar_text(main)
        loads = main.customer.loads
        primary = customer_id_of(main, "Juan López")

        linked = httpx.post(
            f"{server.url}/api/v1/customers/{primary}/link",
            json={"secondary_customer_id": other},
            headers=bearer(admin),
        )
        assert linked.status_code == 201, linked.text
        # No key pressed: the customer.linked event reloads the open customer's sidebar.
        await wait_for(pilot, lambda: "5215544443333" in sidebar_text(main), "the moved identity")
        assert main.customer.loads > loads
        assert "WhatsApp 5215512345678" in sidebar_text(main) and "Juan (otro número)" in sidebar_text(main)
