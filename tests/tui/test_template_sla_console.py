"""Against a real server: outside WhatsApp's 24 h window a template is sent from its dialog and the
sandbox receives its parameters; the SLA countdown changes colour as the console's clock moves;
notifications are counted, toasted, listed and marked read."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from textual.widgets import Label, Select, Static

from max_server.channels.whatsapp.sandbox import Sandbox
from max_server.db import Database
from max_server.models import ChannelAccount, Customer
from max_tui.dialogs.notifications import NotificationsDialog
from max_tui.dialogs.template import ALL_LANGUAGES, TemplateDialog
from max_tui.flows.template import LANGUAGE_PREFERENCE
from max_tui.state import Tab
from max_tui.widgets.composer import WINDOW_CLOSED
from tests.conftest import People, bearer
from tests.support import factories
from tests.support.live import LiveServer
from tests.tui.conftest import Agent, Customers, api_get, ready_screen, wait_for
from tests.tui.test_live_console import row_texts, started, type_text

pytestmark = pytest.mark.anyio
TEMPLATES = "/api/v1/whatsapp-templates"


def approved_template(
    server: LiveServer, sandbox: Sandbox, admin: str, language: str = "es"
) -> dict[str, Any]:
    body = {
        "name": "order_shipped",
        "language": language,
        "category": "UTILITY",
        "components": [
            {
                "type": "BODY",
                "text": "Hola {{1}}, tu pedido {{2}} ha sido enviado. Tracking: {{3}}",
                "example": {"body_text": [["Juan", "A-1001", "1Z999"]]},
            }
        ],
    }
    created = httpx.post(server.url + TEMPLATES, json=body, headers=bearer(admin), timeout=30)
    assert created.status_code == 201, created.text
    template = created.json()
    answer = sandbox.template_status(
        server.url,
        "APPROVED",
        template["whatsapp_template_id"],
        "order_shipped",
        language,
        category="UTILITY",
    )
    assert answer.status_code == 200, answer.text
    return dict(template)


def shown_messages(main: Any) -> list[Any]:
    return [item.message for i in main.thread.message_ids if (item := main.thread.item(i)) is not None]


async def open_only_conversation(pilot: Any, main: Any) -> None:
    await wait_for(pilot, lambda: main.ctx.store.rows(Tab.TEAM), "the conversation")
    await pilot.press("ctrl+t")
    await wait_for(pilot, lambda: row_texts(main), "the row")
    main.queue.option_list.focus()
    await pilot.press("enter")
    await wait_for(pilot, lambda: main.composer.has_focus and main.thread.message_ids, "the thread")


async def test_a_template_is_sent_outside_the_window_with_its_parameters(
    console: Any, customers: Customers, sandbox: Sandbox, server: LiveServer, people: People
) -> None:
    _, admin = people.user("admin", "Ada")
    approved_template(server, sandbox, admin)
    app = console()
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await customers.say_at("¿y mi pedido?", time.time() - 25 * 3600)
        await open_only_conversation(pilot, main)
        assert main.composer.border_title == WINDOW_CLOSED

        await pilot.press("f8")
        dialog = await wait_for(pilot, lambda: ready_screen(app, TemplateDialog), "the template dialog")
        assert "24 h window is closed" in dialog.title_text
        assert [(t.name, t.language) for t in dialog.shown_templates()] == [("order_shipped", "es")]
        await wait_for(pilot, lambda: dialog.query(".template-field"), "the parameter fields")
        await pilot.press("enter")  # choose it: the focus goes to the first parameter
        for value in ("Juan", "A-1001", "1Z999"):
            await type_text(pilot, value)
            await pilot.press("enter")
        preview = str(dialog.query_one("#template-preview", Static).render())
        assert preview == "Hola Juan, tu pedido A-1001 ha sido enviado. Tracking: 1Z999"
        await pilot.press("ctrl+s")

        sent = await wait_for(pilot, lambda: sandbox.sent_messages(accepted_only=True), "the template send")
        template = sent[0]["template"]
        assert template["name"] == "order_shipped" and template["language"]["code"] == "es"
        [body] = [c for c in template["components"] if c["type"] == "body"]
        assert [p["text"] for p in body["parameters"]] == ["Juan", "A-1001", "1Z999"]
        await wait_for(
            pilot,
            lambda: any("A-1001" in (m.content_text or "") for m in shown_messages(main)),
            "the template in the thread",
        )
        await wait_for(pilot, lambda: app.prefs.get("template_language") == "es", "the language remembered")


async def test_the_template_dialog_lists_the_customers_language(
    console: Any,
    customers: Customers,
    sandbox: Sandbox,
    server: LiveServer,
    people: People,
    db: Database,
    agent: Agent,
) -> None:
    """This conversation's last template, else the customer's earlier conversations', else the
    agent's last choice; "All languages" shows every one."""
    _, admin = people.user("admin", "Ada")
    approved_template(server, sandbox, admin, "es")
    approved_template(server, sandbox, admin, "en")
    app = console()
    app.prefs.set(LANGUAGE_PREFERENCE, "es")  # the agent last sent a Spanish template
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await customers.say("hi, where is my order?")
        await wait_for(pilot, lambda: main.ctx.store.rows(Tab.TEAM), "the conversation")
        [current] = main.ctx.store.rows(Tab.TEAM)
        with db.session() as session:  # the customer's earlier conversation got an English template
            customer = session.get(Customer, int(current.customer.id))
            account = session.get(ChannelAccount, int(current.channel_account_id))
        earlier = factories.conversation(
            db,
            customer_row=customer,
            account=account,
            status="closed",
            team=agent.team,
            close_reason="resolved",
        )
        sent = {"name": "order_shipped", "language": "en", "parameters": ["John", "A-1", "1Z"]}
        factories.message(
            db,
            earlier,
            "Hi John…",
            direction="outbound",
            sender_type="agent",
            type="template",
            payload={"template": sent},
        )
        await open_only_conversation(pilot, main)
        await wait_for(pilot, lambda: main.customer.loads, "the customer sidebar")

        async def dialog_for_f8() -> TemplateDialog:
            await pilot.press("f8")
            return await wait_for(pilot, lambda: ready_screen(app, TemplateDialog), "the template dialog")

        dialog = await dialog_for_f8()
        assert (dialog.language, dialog.why) == (
            "en",
            f"as the last template to this customer (#{earlier.number})",
        )
        assert [t.language for t in dialog.shown_templates()] == ["en"]
        assert str(dialog.query_one("#template-language-why", Label).render()) == dialog.why
        dialog.query_one("#template-language", Select).value = ALL_LANGUAGES  # the way to see all
        await wait_for(pilot, lambda: len(dialog.shown_templates()) == 2, "every language")
        dialog.query_one("#template-language", Select).value = "es"
        await wait_for(pilot, lambda: [t.language for t in dialog.shown_templates()] == ["es"], "Spanish")
        await wait_for(pilot, lambda: dialog.query(".template-field"), "the parameter fields")
        await pilot.press("enter")
        for value in ("Juan", "A-1001", "1Z999"):
            await type_text(pilot, value)
            await pilot.press("enter")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: sandbox.sent_messages(accepted_only=True), "the template send")
        await wait_for(
            pilot,
            lambda: any(m.type == "template" for m in main.thread.messages),
            "the template in the thread",
        )

        dialog = await dialog_for_f8()  # now this conversation has its own last template
        assert (dialog.language, dialog.why) == ("es", "as the last template in this conversation")
        await pilot.press("escape")

        # A customer MAX knows nothing about: the agent's last choice (Spanish, remembered).
        await customers.say("hello", wa_id="5215500001111", name="Nadie")
        await wait_for(pilot, lambda: len(main.ctx.store.rows(Tab.TEAM)) == 1, "the new conversation")
        [other] = main.ctx.store.rows(Tab.TEAM)
        await main.open_conversation(other.id)
        await wait_for(
            pilot, lambda: main.customer.shown_customer == other.customer.id and main.thread.message_ids, "it"
        )
        dialog = await dialog_for_f8()
        assert (dialog.language, dialog.why) == ("es", "your last choice")


async def test_the_sla_countdown_changes_colour_as_the_clock_moves(
    console: Any, customers: Customers, server: LiveServer, people: People, agent: Agent
) -> None:
    _, admin = people.user("admin", "Ada")
    policy = {"team": "support", "priority": "normal", "frt_target_s": 600, "resolution_target_s": 7200}
    httpx.put(server.url + "/api/v1/sla/policies", json=policy, headers=bearer(admin)).raise_for_status()
    clock = [datetime.now(UTC)]
    app = console(now=lambda: clock[0])
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await customers.say("necesito ayuda")
        await open_only_conversation(pilot, main)
        await wait_for(pilot, lambda: main.ctx.policies, "the SLA policies")
        conversation = main.current
        assert conversation is not None and conversation.frt_due_at is not None
        start = conversation.frt_due_at - timedelta(seconds=600)
        label = main.query_one("#thread-sla", Static)

        def shown(moment: datetime) -> tuple[str, set[str]]:
            clock[0] = moment
            main.tick()
            return str(label.render()).strip(), set(label.classes)

        text, classes = shown(start + timedelta(minutes=2))
        assert text == "First reply due in 8m" and "-ok" in classes
        colour_ok = label.styles.color
        text, classes = shown(start + timedelta(minutes=8, seconds=30))
        assert text == "First reply due in 1m" and "-warning" in classes and "-ok" not in classes
        await pilot.pause()
        colour_warning = label.styles.color
        text, classes = shown(start + timedelta(minutes=13))
        assert text == "First reply 3m late" and "-breached" in classes
        await pilot.pause()
        colour_breached = label.styles.color
        assert len({colour_ok, colour_warning, colour_breached}) == 3  # muted, amber, red
        row = str(main.queue.option_list.get_option_at_index(0).prompt)
        assert "FRT late 3m" in row


async def test_notifications_are_counted_toasted_listed_and_marked_read(
    console: Any, sandbox: Sandbox, server: LiveServer, people: People
) -> None:
    _, admin = people.user("admin", "Ada")
    app = console(token=admin)
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        assert main.notifications.unread == 0
        await asyncio.to_thread(approved_template, server, sandbox, admin)  # notifies the admins
        await wait_for(pilot, lambda: main.notifications.unread == 1, "the unread counter")
        assert "✉ 1 unread" in str(main.query_one("#unread", Static).render())
        toasts = [n.message for n in app._notifications]
        assert "Template 'order_shipped' (es) approved" in toasts

        await pilot.press("ctrl+n")
        dialog = await wait_for(pilot, lambda: ready_screen(app, NotificationsDialog), "the list")
        await wait_for(pilot, lambda: dialog.items, "the notifications")
        await pilot.press("enter")  # marks it read (it is about no conversation: the list stays)
        await wait_for(pilot, lambda: dialog.unread == 0, "marked read")
        [item] = api_get(server, admin, "/api/v1/notifications")["notifications"]
        assert item["read_at"] is not None
        assert main.notifications.unread == 0
        assert not main.query_one("#unread", Static).display
        await pilot.press("escape")
