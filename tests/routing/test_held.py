"""Conversations held by the customer rate limit: not agents' work (lists), no SLA clocks while
held, and released with their age in the queue kept."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlmodel import col, select

from max_server.access import Actor
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.models import Conversation, Event, SlaViolation
from max_server.schemas import SlaPolicySet
from max_server.services import channels, sla_monitor, sla_policies
from tests.channels.conftest import PHONE_NUMBER_ID, WhatsApp
from tests.conftest import People, bearer
from tests.support.live import LiveServer

SYSTEM = Actor.system("tests")
WA = "5215599990000"
FRT, RESOLUTION = 600, 3600


def support_team(db: Database, people: People) -> dict[str, Any]:
    """Support (the channel's default team, normal priority: FRT 10 min) with Ana, an agent;
    Sofía, its supervisor; and an admin. Nobody online: nothing is assigned."""
    team = people.team("support")
    ana, ana_token = people.user("agent", "Ana")
    sofia, sofia_token = people.user("supervisor", "Sofía")
    people.join(team, ana)
    people.join(team, sofia, "supervisor")
    _, admin_token = people.user("admin")
    with db.session() as session:
        channels.set_default_team(session, SYSTEM, PHONE_NUMBER_ID, "support")
        sla_policies.set_policy(
            session,
            SYSTEM,
            SlaPolicySet(team="support", priority="normal", frt_target_s=FRT, resolution_target_s=RESOLUTION),
        )
    return {"team": team, "ana": ana_token, "sofia": sofia_token, "admin": admin_token}


def held_conversation(whatsapp: WhatsApp, db: Database, clock: FrozenClock) -> Conversation:
    """Six new conversations within the hour (each closed before the next): the sixth is held."""
    for n in range(6):
        whatsapp.text(f"nueva {n}", wa_id=WA, ts=clock.now().timestamp())
        with db.session() as session:
            open_one = session.exec(select(Conversation).where(Conversation.status != "closed")).one()
            if n < 5:
                open_one.status, open_one.closed_at = "closed", clock.now() - timedelta(days=2)
                open_one.sla_next_check_at = None
                session.add(open_one)
                session.commit()
        if n < 5:
            clock.advance(minutes=1)
    assert open_one.rate_limited
    return open_one


def listed(live: LiveServer, token: str, status: str = "queued") -> dict[str, bool]:
    found = httpx.get(live.url + f"/api/v1/conversations?status={status}", headers=bearer(token)).json()
    return {c["id"]: c["rate_limited"] for c in found["conversations"]}


def row(db: Database, conversation: Conversation) -> Conversation:
    with db.session(write=False) as session:
        found = session.get(Conversation, conversation.id)
        assert found is not None
        return found


def test_held_conversations_are_listed_to_supervisors_only_and_marked(
    live: LiveServer, whatsapp: WhatsApp, db: Database, people: People, clock: FrozenClock
) -> None:
    who = support_team(db, people)
    held = held_conversation(whatsapp, db, clock)
    key = str(held.id)
    assert listed(live, who["ana"]) == {} and listed(live, who["ana"], "open") == {}
    assert listed(live, who["sofia"]) == {key: True}
    assert listed(live, who["admin"], "all")[key] is True
    # Released, it is everyone's work.
    customer = str(held.customer_id)
    lifted = httpx.post(
        live.url + f"/api/v1/rate-limits/blocks/{customer}/unblock", headers=bearer(who["sofia"])
    )
    assert lifted.json() == {"lifted": 1}
    assert listed(live, who["ana"]) == {key: False}
    with db.session(write=False) as session:
        updates = [
            e
            for e in session.exec(select(Event).where(Event.type == "conversation.updated"))
            if e.data["id"] == key and e.data["rate_limited"] is False
        ]
    assert len(updates) == 1 and updates[0].audience["teams"] == [who["team"].id]


def test_no_sla_clock_runs_while_held_and_release_keeps_the_age_in_the_queue(
    live: LiveServer, whatsapp: WhatsApp, db: Database, people: People, clock: FrozenClock
) -> None:
    who = support_team(db, people)
    held = held_conversation(whatsapp, db, clock)
    created = clock.now()
    assert (held.frt_due_at, held.resolution_due_at, held.sla_next_check_at) == (None, None, None)
    assert held.queued_at == created
    clock.advance(hours=3)  # far past the FRT and resolution targets
    with db.session() as session:
        sla_monitor.sweep_batch(session, clock.now())
        session.commit()
    with db.session(write=False) as session:
        assert session.exec(select(SlaViolation)).all() == []
    assert row(db, held).escalated_at is None
    released_at = clock.now()
    customer = str(held.customer_id)
    httpx.post(live.url + f"/api/v1/rate-limits/blocks/{customer}/unblock", headers=bearer(who["admin"]))
    after = row(db, held)
    assert not after.rate_limited
    # The clocks start at the release; the queue still knows how long the customer has waited.
    assert after.frt_due_at == released_at + timedelta(seconds=FRT)
    assert after.resolution_due_at == released_at + timedelta(seconds=RESOLUTION)
    assert after.sla_next_check_at is not None
    assert after.queued_at == created


def test_writing_again_within_the_limits_releases_it_with_its_clocks_from_then(
    whatsapp: WhatsApp, db: Database, people: People, clock: FrozenClock
) -> None:
    support_team(db, people)
    held = held_conversation(whatsapp, db, clock)
    created = clock.now()
    clock.advance(minutes=30)  # the 10-minute block is over
    whatsapp.text("¿hola?", wa_id=WA, ts=clock.now().timestamp())
    after = row(db, held)
    assert not after.rate_limited
    assert after.frt_due_at == clock.now() + timedelta(seconds=FRT)
    assert after.queued_at == created
    with db.session(write=False) as session:
        jobs = session.exec(select(col(Event.type)).where(Event.type == "conversation.updated")).all()
    assert jobs, "agents hear that the conversation is theirs now"
