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


def test_a_number_change_leaves_the_primarys_own_phone_and_undo_restores_both_exactly(desk: Desk) -> None:
    desk.chat("cust_77", "hola", name="Rosa", phone="+1 415 555 0123")
    desk.wa("hola por whatsapp", wa_id=OLD, name="Rosa")
    primary = desk.customer_by("chat_app", "cust_77")
    secondary = desk.customer_by("whatsapp", OLD)
    assert (primary["phone_e164"], secondary["phone_e164"]) == ("+14155550123", "+" + OLD)
    link = desk.ok(
        "POST", f"/api/v1/customers/{primary['id']}/link", json={"secondary_customer_id": secondary["id"]}
    )
    ts = desk.clock.now().timestamp()
    desk.wa_message(p.system_number_change(OLD, NEW, p.new_wamid(), ts), wa_id=OLD, name="Rosa")
    during = desk.get(f"/api/v1/customers/{primary['id']}")
    assert during["phone_e164"] == "+14155550123"  # its own phone, not the linked identity's
    assert ("whatsapp", NEW) in {(i["channel"], i["external_id"]) for i in during["identities"]}

    desk.ok("POST", f"/api/v1/customers/links/{link['link_id']}/undo")
    assert desk.get(f"/api/v1/customers/{primary['id']}") == primary
    # The secondary is as it was, but for the number it changed meanwhile (identity and phone).
    renumbered = {
        **secondary,
        "phone_e164": "+" + NEW,
        "identities": [{**i, "external_id": NEW} for i in secondary["identities"]],
    }
    assert desk.get(f"/api/v1/customers/{secondary['id']}") == renumbered


def test_a_linked_customer_without_its_own_phone_takes_the_new_number_and_undo_returns_it(
    desk: Desk,
) -> None:
    desk.chat("cust_78", "hola", name="Rosa")
    desk.wa("hola por whatsapp", wa_id=OLD, name="Rosa")
    primary = desk.customer_by("chat_app", "cust_78")
    secondary = desk.customer_by("whatsapp", OLD)
    link = desk.ok(
        "POST", f"/api/v1/customers/{primary['id']}/link", json={"secondary_customer_id": secondary["id"]}
    )
    assert desk.get(f"/api/v1/customers/{primary['id']}")["phone_e164"] == "+" + OLD  # filled by the link
    ts = desk.clock.now().timestamp()
    desk.wa_message(p.system_number_change(OLD, NEW, p.new_wamid(), ts), wa_id=OLD, name="Rosa")
    assert desk.get(f"/api/v1/customers/{primary['id']}")["phone_e164"] == "+" + NEW

    desk.ok("POST", f"/api/v1/customers/links/{link['link_id']}/undo")
    assert desk.get(f"/api/v1/customers/{primary['id']}") == primary
    assert desk.get(f"/api/v1/customers/{secondary['id']}")["phone_e164"] == "+" + NEW
