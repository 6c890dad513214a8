"""A help desk wired to a webhook receiver, for the tests of what each event type delivers: the
customer writes over signed WhatsApp webhooks, agents act over the API, the Graph API sandbox
answers sends, media and templates, and every event goes to one ``*`` subscription."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from max_server.access import Actor
from max_server.channels.whatsapp.sandbox import Sandbox
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs.worker import Worker
from max_server.realtime import Sequencer
from max_server.services import channels
from tests.channels.conftest import PHONE_NUMBER_ID, WhatsApp
from tests.conftest import People, bearer
from tests.support.live import LiveServer
from tests.support.sandbox_fixtures import sandbox_fixture, sandbox_graph_url  # noqa: F401
from tests.webhooks.conftest import Admin, Receiver, verify

WA = "5215512345678"
ADMIN = Actor.system("tests")
Scenario = Callable[["Scene"], None]


class Scene:
    def __init__(
        self,
        *,
        db: Database,
        live: LiveServer,
        admin: Admin,
        receiver: Receiver,
        whatsapp: WhatsApp,
        worker: Worker,
        clock: FrozenClock,
        people: People,
        sandbox: Sandbox,
    ) -> None:
        self.db, self.live, self.admin, self.receiver = db, live, admin, receiver
        self.whatsapp, self.worker, self.clock, self.sandbox = whatsapp, worker, clock, sandbox
        self.team = people.team("support", name="Soporte")
        people.team("billing", name="Cobranza")
        agent, self.agent_token = people.user("agent", "Ana Agente")
        supervisor, self.supervisor_token = people.user("agent", "Sara Supervisora")
        self.agent_id, self.supervisor_id = str(agent.id), str(supervisor.id)
        people.join(self.team, agent)
        people.join(self.team, supervisor, "supervisor")
        with db.session() as session:
            channels.set_default_team(session, ADMIN, PHONE_NUMBER_ID, "support")
        self.secret = admin.subscribe(receiver.url, ["*"])["secret"]

    # Doing things ------------------------------------------------------------------------------
    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        """An API call (as the admin unless ``token``) that must succeed; returns its JSON."""
        headers = bearer(token) if token else {}
        response = self.admin.request(method, path, headers=headers, **kwargs)
        assert response.is_success, response.text
        return response.json() if response.content else None

    def customer_writes(
        self, text: str = "hola", wa_id: str = WA, name: str = "Juan López"
    ) -> dict[str, Any]:
        """The customer writes; returns their open conversation as the API shows it."""
        self.whatsapp.text(text, wa_id=wa_id, ts=self.clock.now().timestamp(), name=name)
        listed = self.call("GET", "/api/v1/conversations", params={"status": "all", "limit": 500})
        reached = {"channel": "whatsapp", "external_id": wa_id}
        mine = [c for c in listed["conversations"] if reached in c["customer"]["identities"]]
        return max(mine, key=lambda c: int(c["id"]))

    def settle(self) -> None:
        """Sequences events and runs every due job (sends, downloads, deliveries) until quiet."""
        for _ in range(20):
            Sequencer(self.db).run_once()
            if self.worker.drain() == 0:
                return
        raise AssertionError("jobs kept coming")

    # What the receiver got ---------------------------------------------------------------------
    def delivered(self, event_type: str) -> list[dict[str, Any]]:
        """Every delivered body of this type, each verified as a receiver verifies it."""
        self.settle()
        bodies = [verify(d, self.secret) for d in self.receiver.received]
        found = [b for b in bodies if b["type"] == event_type]
        assert found, f"no {event_type} delivered; got {sorted({b['type'] for b in bodies})}"
        for body in found:
            assert set(body) == {"id", "seq", "type", "created_at", "data"}
        return found

    def last(self, event_type: str) -> dict[str, Any]:
        """The data of the last delivered event of this type."""
        return self.delivered(event_type)[-1]["data"]


def conversation_shown(data: dict[str, Any], conversation: dict[str, Any], **expected: Any) -> None:
    """A ``conversation`` object (full or the brief one of message events) names the conversation,
    where it stands, whose it is and how to reach the customer."""
    assert (data["id"], data["number"]) == (conversation["id"], conversation["number"])
    assert data["customer"]["id"] == conversation["customer"]["id"]
    assert data["customer"]["name"] == conversation["customer"]["name"]
    assert data["customer"]["identities"] == conversation["customer"]["identities"]
    assert {"status", "team", "assignee", "priority", "channel"} <= set(data)
    for key, value in expected.items():
        assert data[key] == value, (key, data[key], value)


@pytest.fixture
def help_desk(
    db: Database,
    live: LiveServer,
    admin: Admin,
    receiver: Receiver,
    whatsapp: WhatsApp,
    worker: Worker,
    clock: FrozenClock,
    people: People,
    sandbox: Sandbox,
) -> Scene:
    return Scene(
        db=db,
        live=live,
        admin=admin,
        receiver=receiver,
        whatsapp=whatsapp,
        worker=worker,
        clock=clock,
        people=people,
        sandbox=sandbox,
    )
