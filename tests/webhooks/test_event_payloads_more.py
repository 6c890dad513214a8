"""What the customer, template, media, notification and presence events deliver to a webhook
receiver (DESIGN §7 and the documented extensions), one scenario per type through the real flows;
and no subscribable type goes without such a scenario."""

from __future__ import annotations

from typing import Any

import pytest

from max_server.channels.whatsapp import payloads
from max_server.services import webhooks
from tests.support.sandbox_fixtures import sandbox_fixture, sandbox_graph_url  # noqa: F401
from tests.templates.conftest import order_shipped
from tests.webhooks import test_event_payloads
from tests.webhooks.scene import WA, Scenario, Scene, help_desk  # noqa: F401

SCENARIOS: dict[str, Scenario] = {}
OTHER = "5215598765432"


def scenario(event_type: str) -> Any:
    def register(run: Scenario) -> Scenario:
        SCENARIOS[event_type] = run
        return run

    return register


def identity(wa_id: str) -> dict[str, str]:
    return {"channel": "whatsapp", "external_id": wa_id}


def two_customers(scene: Scene) -> tuple[str, str]:
    first = scene.customer_writes("hola", WA, "Juan López")["customer"]["id"]
    second = scene.customer_writes("soy yo otra vez", OTHER, "Juan L.")["customer"]["id"]
    return first, second


def _link(scene: Scene) -> tuple[str, str, str]:
    primary, secondary = two_customers(scene)
    made = scene.call("POST", f"/api/v1/customers/{primary}/link", json={"secondary_customer_id": secondary})
    return primary, secondary, made["link_id"]


@scenario("customer.linked")
def _linked(scene: Scene) -> None:
    primary, secondary, link_id = _link(scene)
    data = scene.last("customer.linked")
    assert (data["link_id"], data["primary_customer_id"], data["secondary_customer_id"]) == (
        link_id,
        primary,
        secondary,
    )
    assert data["moved"]["identities"] == 1
    # The customers as they are now: every identity is the primary's.
    assert data["primary"] == {
        "id": primary,
        "name": "Juan López",
        "identities": [identity(WA), identity(OTHER)],
    }
    assert data["secondary"] == {"id": secondary, "name": "Juan L.", "identities": []}


@scenario("customer.unlinked")
def _unlinked(scene: Scene) -> None:
    primary, secondary, link_id = _link(scene)
    scene.call("POST", f"/api/v1/customers/links/{link_id}/undo")
    data = scene.last("customer.unlinked")
    assert (data["link_id"], data["unlinked_by"]["name"]) == (link_id, "Ada Admin")
    assert data["primary"] == {"id": primary, "name": "Juan López", "identities": [identity(WA)]}
    assert data["secondary"] == {"id": secondary, "name": "Juan L.", "identities": [identity(OTHER)]}


@scenario("customer.tagged")
def _tagged(scene: Scene) -> None:
    customer = scene.customer_writes()["customer"]["id"]
    scene.call("POST", f"/api/v1/customers/{customer}/tags", json={"tags": ["vip"]})
    # Only the customer is named: tags can be personal data (docs/templates-webhooks.md).
    assert scene.last("customer.tagged") == {"customer_id": customer}


@scenario("customer.erased")
def _erased(scene: Scene) -> None:
    conversation = scene.customer_writes()
    customer = conversation["customer"]["id"]
    scene.call("POST", f"/api/v1/customers/{customer}/erase")
    data = scene.last("customer.erased")
    assert (data["customer_id"], data["customers"], data["conversations"], data["messages"]) == (
        customer,
        [customer],
        1,
        1,
    )
    assert data["identities_deleted"] == 1 and data["erased_at"]


@scenario("customer.rate_limited")
def _rate_limited(scene: Scene) -> None:
    for n in range(21):  # the default limit is 20 messages a minute
        scene.whatsapp.text(f"mensaje {n}", wa_id=WA, ts=scene.clock.now().timestamp())
    conversation = scene.customer_writes("uno más")
    data = scene.last("customer.rate_limited")
    assert (data["customer_id"], data["customer_name"]) == (conversation["customer"]["id"], "Juan López")
    assert (data["conversation_id"], data["conversation_number"]) == (
        conversation["id"],
        conversation["number"],
    )
    assert data["reason"] and data["until"]


def _template(scene: Scene) -> dict[str, Any]:
    created = scene.call("POST", "/api/v1/whatsapp-templates", json=order_shipped())
    answer = scene.sandbox.template_status(
        scene.live.url, "APPROVED", created["whatsapp_template_id"], "order_shipped", "es", category="UTILITY"
    )
    assert answer.status_code == 200
    return created


@scenario("template.status_updated")
def _template_status(scene: Scene) -> None:
    created = _template(scene)
    data = scene.last("template.status_updated")
    assert (data["id"], data["name"], data["language"]) == (created["id"], "order_shipped", "es")
    assert (data["status"], data["previous_status"], data["change"]) == ("APPROVED", "PENDING", "status")
    assert data["whatsapp_template_id"] == created["whatsapp_template_id"]


@scenario("notification.created")
def _notification(scene: Scene) -> None:
    created = _template(scene)  # its creator hears about the review
    data = scene.last("notification.created")
    assert (data["kind"], data["text"]) == (
        "template.status_updated",
        "Template 'order_shipped' (es) approved",
    )
    assert data["user_id"] == scene.admin.get("/api/v1/me").json()["id"]
    assert (data["data"]["template_id"], data["data"]["status"]) == (created["id"], "APPROVED")


@scenario("media.stored")
def _stored(scene: Scene) -> None:
    photo = b"\xff\xd8\xff\xe0" + b"foto" * 2000
    answer, wamid, _ = scene.sandbox.customer_media(
        scene.live.url, WA, photo, "image/jpeg", ts=scene.clock.now().timestamp()
    )
    assert answer.status_code == 200
    data = scene.last("media.stored")
    conversation = scene.customer_writes("¿les llegó?")
    assert (data["conversation_id"], data["status"], data["media_type"]) == (
        conversation["id"],
        "stored",
        "image",
    )
    assert (data["mime_type"], data["size"]) == ("image/jpeg", len(photo))
    messages = scene.call("GET", f"/api/v1/conversations/{conversation['id']}/messages")["messages"]
    assert [m["id"] for m in messages if m["channel_message_id"] == wamid] == [data["message_id"]]


@scenario("media.failed")
def _failed(scene: Scene) -> None:
    media_id = scene.sandbox.add_media(b"not what was announced", "image/jpeg")
    message = payloads.media_message(
        "image", WA, payloads.new_wamid(), media_id, "image/jpeg", payloads.sha256_b64(b"other bytes"),
        scene.clock.now().timestamp(),
    )  # fmt: skip
    scene.whatsapp.message(message)
    data = scene.last("media.failed")
    conversation = scene.customer_writes("¿y la foto?")
    assert (data["conversation_id"], data["status"]) == (conversation["id"], "failed")
    assert data["reason"].startswith("checksum mismatch")


@scenario("agent.presence_changed")
def _presence(scene: Scene) -> None:
    scene.call("PUT", "/api/v1/me/presence", scene.agent_token, json={"presence": "online"})
    data = scene.last("agent.presence_changed")
    assert (data["id"], data["name"], data["presence"], data["previous_presence"]) == (
        scene.agent_id,
        "Ana Agente",
        "online",
        "offline",
    )


@pytest.mark.parametrize("event_type", sorted(SCENARIOS))
def test_each_event_reaches_the_receiver_with_enough_to_act_on(
    help_desk: Scene,  # noqa: F811 - the fixture imported above
    event_type: str,
) -> None:
    SCENARIOS[event_type](help_desk)


def test_every_subscribable_event_type_has_a_delivery_scenario() -> None:
    covered = set(SCENARIOS) | set(test_event_payloads.SCENARIOS)
    assert covered == set(webhooks.EVENT_TYPES)
