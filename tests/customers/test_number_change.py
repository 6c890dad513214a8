"""A WhatsApp ``user_changed_number`` system message moves the identity: later messages from the
new number join the same customer, also across a link and its undo."""

from __future__ import annotations

from max_server.channels.whatsapp import payloads as p
from tests.customers.conftest import Desk

OLD, NEW = "5215500000001", "5215599999999"


def test_later_messages_from_the_new_number_join_the_same_customer(desk: Desk) -> None:
    desk.chat("cust_77", "hola", name="Rosa", email="rosa@example.com")
    desk.wa("hola por whatsapp", wa_id=OLD, name="Rosa")
    app_customer = desk.customer_by("chat_app", "cust_77")
    wa_customer = desk.customer_by("whatsapp", OLD)
    link = desk.ok(
        "POST",
        f"/api/v1/customers/{app_customer['id']}/link",
        json={"secondary_customer_id": wa_customer["id"]},
    )
    ts = desk.clock.now().timestamp()
    desk.wa_message(p.system_number_change(OLD, NEW, p.new_wamid(), ts), wa_id=OLD, name="Rosa")
    desk.wa("ya con número nuevo", wa_id=NEW, name="Rosa")

    assert desk.customer_by("whatsapp", NEW)["id"] == app_customer["id"]
    assert (
        desk.call(
            "GET", "/api/v1/customers/by-identity", params={"channel": "whatsapp", "external_id": OLD}
        ).status_code
        == 404
    )
    context = desk.get(f"/api/v1/customers/{app_customer['id']}/context")
    assert sorted((i["channel"], i["external_id"]) for i in context["customer"]["identities"]) == [
        ("chat_app", "cust_77"),
        ("whatsapp", NEW),
    ]
    assert (
        context["previous_conversations_total"] == 2
    )  # one per channel: the number change stayed in its thread
    [whatsapp_thread] = [c for c in context["previous_conversations"] if c["channel"] == "whatsapp"]
    texts = [
        m["type"] for m in desk.get(f"/api/v1/conversations/{whatsapp_thread['id']}/messages")["messages"]
    ]
    assert texts == ["text", "system", "text"]

    # Undoing the link gives the WhatsApp customer back its (new) number and its thread.
    desk.ok("POST", f"/api/v1/customers/links/{link['link_id']}/undo")
    assert desk.customer_by("whatsapp", NEW)["id"] == wa_customer["id"]
    desk.wa("sigo aquí", wa_id=NEW, name="Rosa")
    [conversation] = desk.conversations(wa_customer["id"])
    assert conversation["id"] == whatsapp_thread["id"]
    assert desk.get(f"/api/v1/customers/{wa_customer['id']}")["phone_e164"] == "+" + NEW
