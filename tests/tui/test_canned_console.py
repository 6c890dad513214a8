"""Canned responses in the composer, against a real server: ``/gre`` + Tab inserts the greeting
with the customer's name; a response with ``{{order_id}}`` asks for it first; the list is cached
with its ETag (a 304 on revalidation) and the use is counted once the reply is sent."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from max_server.client import AsyncMaxClient
from max_tui.dialogs.variables import VariablesForm
from max_tui.state import Tab
from tests.conftest import People, bearer
from tests.support.live import LiveServer
from tests.tui.conftest import Agent, Customers, ready_screen, wait_for
from tests.tui.test_live_console import row_texts, started, type_text

pytestmark = pytest.mark.anyio
CANNED = "/api/v1/canned-responses"


def add_canned(server: LiveServer, token: str, **body: Any) -> dict[str, Any]:
    response = httpx.post(server.url + CANNED, json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture
def responses(server: LiveServer, people: People) -> dict[str, dict[str, Any]]:
    _, admin = people.user("admin", "Ada")
    return {
        "greeting": add_canned(
            server,
            admin,
            shortcut="/greeting",
            title="Saludo",
            content="¡Hola {{customer_first_name|}}! Soy {{agent_first_name}}, ¿en qué te ayudo?",
        ),
        "gracias": add_canned(server, admin, shortcut="/gracias", title="Gracias", content="¡Gracias!"),
        "pedido": add_canned(
            server,
            admin,
            shortcut="/pedido",
            title="Estado del pedido",
            content="Tu pedido {{order_id}} ya salió, {{customer_first_name}}.",
        ),
    }


async def open_first(pilot: Any, main: Any, customers: Customers) -> None:
    await customers.say("hola, ¿me ayudan?")
    await wait_for(pilot, lambda: main.ctx.store.rows(Tab.TEAM), "the conversation")
    await pilot.press("ctrl+t")
    await wait_for(pilot, lambda: row_texts(main), "the row")
    main.queue.option_list.focus()
    await pilot.press("enter")
    await wait_for(pilot, lambda: main.composer.has_focus and main.thread.message_ids, "the thread")


async def test_slash_gre_tab_inserts_the_greeting_with_the_customers_name(
    console: Any, customers: Customers, responses: dict[str, dict[str, Any]], server: LiveServer, agent: Agent
) -> None:
    app = console()
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await wait_for(pilot, lambda: len(main.ctx.canned) == 3, "the canned responses")
        await open_first(pilot, main, customers)

        await type_text(pilot, "Buenas, /gre")
        dropdown = main.dropdown
        assert dropdown.is_open
        assert [r.shortcut for r in dropdown.matches] == ["/greeting"]  # prefix first
        await pilot.press("tab")
        await wait_for(pilot, lambda: "Juan" in main.composer.text, "the rendered greeting")
        assert main.composer.text == "Buenas, ¡Hola Juan! Soy Ana, ¿en qué te ayudo?"
        assert not dropdown.is_open
        assert main.composer.cursor_location == main.composer.document.end

        # "/" mid-word does not open it; Escape closes it and leaves the text alone.
        await type_text(pilot, " a/b /")
        assert dropdown.is_open and len(dropdown.matches) == 3
        await pilot.press("escape")
        assert not dropdown.is_open and main.composer.has_focus
        assert main.composer.text.endswith(" a/b /")

        # Sending counts one use of the greeting (the agent may have edited it: /used).
        before = {
            r["id"]: r["usage_count"]
            for r in httpx.get(server.url + CANNED, headers=bearer(agent.token)).json()["responses"]
        }
        await pilot.press("enter")
        greeting = responses["greeting"]["id"]

        def used() -> bool:
            listed = httpx.get(server.url + CANNED, headers=bearer(agent.token)).json()["responses"]
            return {r["id"]: r["usage_count"] for r in listed}[greeting] == before[greeting] + 1

        await wait_for(pilot, used, "the use to be counted")
        assert app.requests("POST", f"{CANNED}/{greeting}/used")


async def test_a_response_with_an_order_id_asks_for_it_and_inserts_the_filled_text(
    console: Any, customers: Customers, responses: dict[str, dict[str, Any]]
) -> None:
    app = console()
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await wait_for(pilot, lambda: len(main.ctx.canned) == 3, "the canned responses")
        await open_first(pilot, main, customers)

        await type_text(pilot, "/ped")
        assert [r.shortcut for r in main.dropdown.matches] == ["/pedido"]
        await pilot.press("enter")  # Enter inserts too (and does not send)
        form = await wait_for(pilot, lambda: ready_screen(app, VariablesForm), "the variables form")
        assert form.missing == ["order_id"]  # the customer's name comes from the context
        assert main.composer.text == ""  # the /shortcut is gone, nothing inserted yet
        await type_text(pilot, "ORD-1234")
        await pilot.press("enter")
        await wait_for(pilot, lambda: main.composer.text, "the filled text")
        assert main.composer.text == "Tu pedido ORD-1234 ya salió, Juan."
        assert app.requests("POST", "/messages") == []  # inserted, not sent

        # Cancelling the form inserts nothing.
        await pilot.press("space")
        await type_text(pilot, "/pedido")
        await pilot.press("tab")
        await wait_for(pilot, lambda: ready_screen(app, VariablesForm), "the variables form again")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is main, "the main screen")
        assert main.composer.text == "Tu pedido ORD-1234 ya salió, Juan. "


async def test_the_console_revalidates_with_its_etag_and_filters_keystrokes_locally(
    console: Any,
    customers: Customers,
    responses: dict[str, dict[str, Any]],
    server: LiveServer,
    people: People,
) -> None:
    app = console()
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await wait_for(pilot, lambda: len(main.ctx.canned) == 3, "the canned responses")

        def catalog_gets() -> list[Any]:
            return [e for e in app.recorder.exchanges if e.method == "GET" and e.path == CANNED]

        [first] = catalog_gets()
        assert first.status == 200 and "if-none-match" not in first.headers
        listed = main.ctx.canned.responses
        main.canned.refresh(force=True)  # what a resync or the dropdown's minute does
        await wait_for(pilot, lambda: len(catalog_gets()) == 2, "the revalidation")
        second = catalog_gets()[1]
        assert second.headers["if-none-match"] == main.ctx.canned.etag and second.status == 304
        assert main.ctx.canned.responses is listed  # kept as it was: nothing downloaded again

        await open_first(pilot, main, customers)
        before = len(app.recorder.log)
        await type_text(pilot, "/gra")
        assert [r.shortcut for r in main.dropdown.matches] == ["/gracias"]
        await type_text(pilot, "x")
        assert main.dropdown.matches == []  # a miss
        await pilot.press("backspace", "backspace", "backspace", "backspace", "r", "e")
        assert [r.shortcut for r in main.dropdown.matches] == ["/greeting"]
        typed = app.recorder.log[before:]
        assert [request for request in typed if request[1].startswith(CANNED)] == []  # not one per key

        # A change on the server reaches the console on the next revalidation (a 200 this time).
        _, admin = people.user("admin", "Alba")
        add_canned(server, admin, shortcut="/gerente", title="Gerente", content="Te comunico con mi gerente.")
        main.canned.refresh(force=True)
        await wait_for(pilot, lambda: len(main.ctx.canned) == 4, "the new response")
        assert catalog_gets()[-1].status == 200


async def test_the_list_is_cached_with_its_etag(server: LiveServer, agent: Agent, people: People) -> None:
    _, admin = people.user("admin", "Ada")
    add_canned(server, admin, shortcut="/hola", title="Hola", content="Hola")
    client = AsyncMaxClient(server.url, agent.token)
    try:
        body, etag = await client.get_if_changed(CANNED, None)
        assert etag and [r["shortcut"] for r in body["responses"]] == ["/hola"]
        assert await client.get_if_changed(CANNED, etag) == (None, etag)  # 304: nothing to send
        add_canned(server, admin, shortcut="/adios", title="Adiós", content="Adiós")
        changed, new_etag = await client.get_if_changed(CANNED, etag)
        assert new_etag != etag and len(changed["responses"]) == 2
    finally:
        await client.aclose()
