"""What each conversation, message and SLA event delivers to a webhook receiver (DESIGN §7): the
subject as the API shows it, and enough to act without calling back (ids, number, status, team,
assignee, the customer's identities). One scenario per event type, through the real flows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from max_server.schemas import SlaPolicySet
from max_server.services import present, sla_monitor, sla_policies
from tests.support.sandbox_fixtures import sandbox_fixture, sandbox_graph_url  # noqa: F401
from tests.webhooks.scene import ADMIN, WA, Scenario, Scene, conversation_shown, help_desk  # noqa: F401

SCENARIOS: dict[str, Scenario] = {}


def scenario(event_type: str) -> Any:
    def register(run: Scenario) -> Scenario:
        SCENARIOS[event_type] = run
        return run

    return register


def path(conversation: dict[str, Any], action: str = "") -> str:
    return f"/api/v1/conversations/{conversation['id']}{action}"


def monitor(scene: Scene, policy: dict[str, Any], *minutes: int) -> dict[str, Any]:
    """A conversation under ``policy`` (normal priority) and the monitor at these minutes."""
    with scene.db.session() as session:
        sla_policies.set_policy(session, ADMIN, SlaPolicySet(team="support", priority="normal", **policy))
    start = scene.clock.now()
    conversation = scene.customer_writes("¿me ayudan?")
    for minute in minutes:
        scene.clock.set(start + timedelta(minutes=minute))
        with scene.db.session() as session:
            sla_monitor.sweep_batch(session, scene.clock.now())
            session.commit()
    return conversation


@scenario("conversation.created")
def _created(scene: Scene) -> None:
    conversation = scene.customer_writes()
    data = scene.last("conversation.created")
    conversation_shown(data, conversation, status="queued", assignee=None, channel="whatsapp")
    assert data["customer"]["identities"] == [{"channel": "whatsapp", "external_id": WA}]
    assert data["team"]["slug"] == "support"


@scenario("conversation.updated")
def _updated(scene: Scene) -> None:
    conversation = scene.customer_writes()
    scene.call("PATCH", path(conversation), json={"priority": "high"})
    conversation_shown(scene.last("conversation.updated"), conversation, priority="high")


@scenario("conversation.assigned")
def _assigned(scene: Scene) -> None:
    conversation = scene.customer_writes()
    scene.call("POST", path(conversation, "/assign"), json={"user_id": scene.agent_id})
    data = scene.last("conversation.assigned")
    conversation_shown(
        data, conversation, status="assigned", assignee={"id": scene.agent_id, "name": "Ana Agente"}
    )


@scenario("conversation.transferred")
def _transferred(scene: Scene) -> None:
    conversation = scene.customer_writes()
    scene.call("POST", path(conversation, "/transfer"), json={"team": "billing"})
    data = scene.last("conversation.transferred")
    conversation_shown(data, conversation)
    assert (data["team"]["slug"], data["team"]["name"]) == ("billing", "Cobranza")


@scenario("conversation.escalated")
def _escalated(scene: Scene) -> None:
    conversation = monitor(
        scene, {"frt_target_s": 600, "resolution_target_s": 3600, "escalation_after_s": 900}, 15
    )
    data = scene.last("conversation.escalated")
    conversation_shown(data, conversation, priority="urgent", status="queued")
    assert data["team"]["slug"] == "support"


@scenario("conversation.closed")
def _closed(scene: Scene) -> None:
    conversation = scene.customer_writes()
    scene.call("POST", path(conversation, "/close"), json={"reason": "resolved"})
    data = scene.last("conversation.closed")
    conversation_shown(data, conversation, status="closed", close_reason="resolved")


@scenario("conversation.reopened")
def _reopened(scene: Scene) -> None:
    conversation = scene.customer_writes()
    scene.call("POST", path(conversation, "/close"), json={"reason": "resolved"})
    scene.call("POST", path(conversation, "/reopen"))
    data = scene.last("conversation.reopened")
    conversation_shown(data, conversation, status="queued", cycle=2)


def _brief(data: dict[str, Any], conversation: dict[str, Any], **expected: Any) -> None:
    """Message events: the message as the API shows it, and the small ``conversation`` object."""
    assert data["conversation_id"] == conversation["id"]
    assert set(data["conversation"]) == present.EVENT_CONVERSATION_FIELDS
    conversation_shown(data["conversation"], conversation, **expected)


@scenario("message.created")
def _message_created(scene: Scene) -> None:
    conversation = scene.customer_writes("¿dónde está mi pedido?")
    inbound = scene.last("message.created")
    assert (inbound["direction"], inbound["sender_type"], inbound["content_text"]) == (
        "inbound",
        "customer",
        "¿dónde está mi pedido?",
    )
    _brief(inbound, conversation, status="queued", assignee=None)
    assert inbound["conversation"]["team"]["slug"] == "support"
    scene.call("POST", path(conversation, "/messages"), scene.agent_token, json={"text": "Ya lo reviso"})
    reply = scene.last("message.created")
    assert (reply["direction"], reply["sender"]["name"], reply["content_text"]) == (
        "outbound",
        "Ana Agente",
        "Ya lo reviso",
    )
    _brief(reply, conversation, status="assigned", assignee={"id": scene.agent_id, "name": "Ana Agente"})


@scenario("message.status_updated")
def _status_updated(scene: Scene) -> None:
    conversation = scene.customer_writes()
    scene.call("POST", path(conversation, "/messages"), scene.agent_token, json={"text": "Hola"})
    scene.settle()  # the sandbox accepts the send: the message is "sent"
    [reply] = [
        m
        for m in scene.call("GET", path(conversation, "/messages"))["messages"]
        if m["direction"] == "outbound"
    ]
    assert reply["channel_message_id"]
    answer = scene.sandbox.status_update(scene.live.url, reply["channel_message_id"], "delivered", WA)
    assert answer.status_code == 200
    delivered = scene.delivered("message.status_updated")
    assert [d["data"]["delivery_status"] for d in delivered] == ["sent", "delivered"]
    data = delivered[-1]["data"]
    assert (data["id"], data["direction"]) == (reply["id"], "outbound")
    _brief(data, conversation, status="assigned", assignee={"id": scene.agent_id, "name": "Ana Agente"})


@scenario("sla.warning")
def _warning(scene: Scene) -> None:
    conversation = monitor(scene, {"frt_target_s": 600, "resolution_target_s": 3600}, 8)
    data = scene.last("sla.warning")
    assert (data["metric"], data["target_s"]) == ("frt", 600)
    conversation_shown(data["conversation"], conversation, status="queued")


@scenario("sla.violated")
def _violated(scene: Scene) -> None:
    conversation = monitor(scene, {"frt_target_s": 600, "resolution_target_s": 3600}, 10)
    data = scene.last("sla.violated")
    violation = data["violation"]
    assert (violation["kind"], violation["target_s"], violation["actual_s"], violation["cycle"]) == (
        "frt",
        600,
        600,
        1,
    )
    assert violation["conversation_number"] == conversation["number"]
    conversation_shown(data["conversation"], conversation)


@pytest.mark.parametrize("event_type", sorted(SCENARIOS))
def test_each_event_reaches_the_receiver_with_enough_to_act_on(
    help_desk: Scene,  # noqa: F811 - the fixture imported above
    event_type: str,
) -> None:
    SCENARIOS[event_type](help_desk)
