"""A help desk for SLA tests: customers write over signed WhatsApp webhooks, agents answer and
close over the API, and the monitor runs as the periodic job it is (one tick per minute)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
from sqlmodel import col, select

from max_server.access import Actor
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs import registry, scheduler
from max_server.jobs.worker import Worker
from max_server.models import Conversation, CustomerIdentity, Event, Notification, SlaViolation
from max_server.schemas import SlaPolicySet
from max_server.services import channels, sla_policies
from tests.channels.conftest import PHONE_NUMBER_ID, WhatsApp
from tests.conftest import People, bearer
from tests.support.live import LiveServer

ADMIN = Actor.system("tests")


class Desk:
    def __init__(
        self,
        *,
        db: Database,
        live: LiveServer,
        whatsapp: WhatsApp,
        worker: Worker,
        clock: FrozenClock,
        people: People,
        team: str = "support",
        timezone: str = "America/Mexico_City",
    ) -> None:
        self.db, self.live, self.whatsapp, self.worker, self.clock = db, live, whatsapp, worker, clock
        self.team = people.team(team, timezone=timezone)
        supervisor, self.supervisor_token = people.user("agent", "Sara Supervisora")
        agent, self.agent_token = people.user("agent", "Ana Agente")
        _, self.admin_token = people.user("admin", "Ada Admin")
        self.supervisor_id = supervisor.id
        people.join(self.team, supervisor, "supervisor")
        people.join(self.team, agent)
        with db.session() as session:
            channels.set_default_team(session, ADMIN, PHONE_NUMBER_ID, team)

    # Configuration ---------------------------------------------------------------------------
    def policy(
        self, priority: str, frt: int, resolution: int, escalate: int | None = None, business: bool = False
    ) -> None:
        body = SlaPolicySet(
            team=self.team.slug,
            priority=priority,
            frt_target_s=frt,
            resolution_target_s=resolution,
            escalation_after_s=escalate,
            business_hours_only=business,
        )
        with self.db.session() as session:
            sla_policies.set_policy(session, ADMIN, body)

    # People doing things ---------------------------------------------------------------------
    def customer_writes(self, wa_id: str, text: str = "hola") -> Conversation:
        self.whatsapp.text(text, wa_id=wa_id, ts=self.clock.now().timestamp())
        return self.conversation_of(wa_id)

    def conversation_of(self, wa_id: str) -> Conversation:
        with self.db.session(write=False) as session:
            identity = session.exec(
                select(CustomerIdentity).where(CustomerIdentity.external_id == wa_id)
            ).one()
            found = session.exec(
                select(Conversation)
                .where(Conversation.customer_id == identity.customer_id)
                .order_by(col(Conversation.id).desc())
            ).first()
            assert found is not None
            return found

    def reload(self, conversation: Conversation) -> Conversation:
        with self.db.session(write=False) as session:
            found = session.get(Conversation, conversation.id)
            assert found is not None
            return found

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method, self.live.url + path, headers=bearer(token or self.agent_token), timeout=30, **kwargs
        )

    def reply(self, conversation: Conversation, text: str = "¡Hola! Ya te atiendo.") -> None:
        response = self.api("POST", f"/api/v1/conversations/{conversation.id}/messages", json={"text": text})
        assert response.status_code == 201, response.text

    def close(self, conversation: Conversation, reason: str = "resolved") -> None:
        response = self.api(
            "POST",
            f"/api/v1/conversations/{conversation.id}/close",
            self.supervisor_token,
            json={"reason": reason},
        )
        assert response.status_code == 200, response.text

    def run_monitor(self) -> None:
        """One tick of the periodic task at the frozen clock's time, run by the worker."""
        [task] = [t for t in registry.periodic_tasks() if t.name == "sla.monitor"]
        with self.db.session() as session:
            scheduler.fire(session, task, self.clock.now())
            session.commit()
        self.worker.drain()

    # What happened ---------------------------------------------------------------------------
    def events(self, conversation: Conversation) -> Counter[str]:
        """Event types about this conversation: sla.* by their subject, conversation.escalated."""
        wanted = ("sla.warning", "sla.violated", "conversation.escalated")
        with self.db.session(write=False) as session:
            rows = session.exec(
                select(Event).where(col(Event.type).in_(wanted)).order_by(col(Event.id))
            ).all()
        found: Counter[str] = Counter()
        for row in rows:
            subject = row.data.get("conversation", row.data)
            if subject.get("id") == str(conversation.id):
                label = row.type + (f":{row.data['metric']}" if row.type == "sla.warning" else "")
                if row.type == "sla.violated":
                    label += f":{row.data['violation']['kind']}:{row.data['violation']['cycle']}"
                found[label] += 1
        return found

    def violations(self, conversation: Conversation) -> list[SlaViolation]:
        with self.db.session(write=False) as session:
            return list(
                session.exec(
                    select(SlaViolation)
                    .where(SlaViolation.conversation_id == conversation.id)
                    .order_by(col(SlaViolation.id))
                )
            )

    def notifications(self, kind: str) -> list[Notification]:
        with self.db.session(write=False) as session:
            return list(session.exec(select(Notification).where(Notification.kind == kind)))
