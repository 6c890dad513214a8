"""Escalations, rate-limit blocks and assignments reach the console against a real server: the
server's clock moves past a policy's ``escalation_after``, the SLA monitor runs, and the queue row
gets its ``ESC`` badge, the thread "▲ ESCALATED", the supervisor a red toast; a customer held by
the rate limit toasts the supervisor; a conversation someone else assigns to the agent toasts
"assigned to you" (one the agent takes does not)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from textual.widgets import Static

from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.services import sla_monitor
from max_tui.state import Tab
from tests.conftest import People, bearer
from tests.support.live import LiveServer
from tests.tui.conftest import Agent, Customers, api_get, wait_for
from tests.tui.test_live_console import row_texts, started

pytestmark = pytest.mark.anyio


def toasts(app: Any) -> list[tuple[str, str, str]]:
    return [(n.title, n.message, n.severity) for n in app._notifications]


@pytest.fixture
def supervisor(people: People, agent: Agent) -> str:
    user, token = people.user("supervisor", "Sofía")
    people.join(agent.team, user, "supervisor")
    return token


async def test_an_escalation_shows_its_badge_in_the_queue_and_thread_and_toasts(
    console: Any,
    customers: Customers,
    server: LiveServer,
    people: People,
    supervisor: str,
    clock: FrozenClock,
    db: Database,
) -> None:
    _, admin = people.user("admin", "Ada")
    policy = {
        "team": "support",
        "priority": "normal",
        "frt_target_s": 60,
        "resolution_target_s": 3600,
        "escalation_after_s": 120,
    }
    httpx.put(server.url + "/api/v1/sla/policies", json=policy, headers=bearer(admin)).raise_for_status()
    app = console(token=supervisor, now=clock.now)
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await customers.say_at("¿alguien me atiende?", clock.now().timestamp())
        await wait_for(pilot, lambda: main.ctx.store.rows(Tab.ALL), "the conversation")
        [conversation] = main.ctx.store.rows(Tab.ALL)
        await main.open_conversation(conversation.id)
        await wait_for(pilot, lambda: main.thread.message_ids, "the thread")
        label = main.query_one("#thread-sla", Static)
        assert "ESCALATED" not in str(label.render()) and "ESC " not in row_texts(main)[0]

        clock.advance(timedelta(minutes=3))  # past the first reply's deadline and escalate_after
        with db.session() as session:
            assert sla_monitor.sweep_batch(session, clock.now()) == 1
            session.commit()

        await wait_for(pilot, lambda: main.current and main.current.escalated_at, "conversation.escalated")
        await wait_for(pilot, lambda: "ESC urgent #1" in row_texts(main)[0], "the ESC badge in the queue")
        await wait_for(pilot, lambda: "▲ ESCALATED" in str(label.render()), "the thread's badge")
        assert "First reply 2m late" in str(label.render())
        assert "-escalated" in label.classes and "-breached" in label.classes
        await wait_for(pilot, lambda: any(t[0] == "Escalated" for t in toasts(app)), "the toast")
        [(_, text, severity)] = [t for t in toasts(app) if t[0] == "Escalated"]
        assert text == "Conversation #1 escalated: first response target missed" and severity == "error"
        assert main.notifications.unread == 1


@pytest.fixture
def rate_limits() -> dict[str, Any]:
    return {"messages_per_minute": 3}


async def test_a_rate_limit_block_toasts_the_supervisor(
    console: Any, customers: Customers, supervisor: str
) -> None:
    app = console(token=supervisor)
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        for number in range(1, 6):
            await customers.say(f"mensaje {number}")
        await wait_for(pilot, lambda: any(t[0] == "Rate limit" for t in toasts(app)), "the toast")
        [(_, text, severity)] = [t for t in toasts(app) if t[0] == "Rate limit"]
        assert text.startswith("Juan López is held by the rate limit") and severity == "warning"
        assert main.notifications.unread == 1


async def test_assigned_to_you_toasts_only_when_someone_else_assigns(
    console: Any, customers: Customers, server: LiveServer, people: People, agent: Agent
) -> None:
    _, admin = people.user("admin", "Ada")
    app = console()
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await customers.say("hola", wa_id="5215500000001", name="Uno")
        await customers.say("hola", wa_id="5215500000002", name="Dos")
        await wait_for(pilot, lambda: len(main.ctx.store.rows(Tab.TEAM)) == 2, "two conversations")
        uno, dos = sorted(main.ctx.store.rows(Tab.TEAM), key=lambda c: c.number)

        await asyncio.to_thread(
            lambda: httpx.post(
                f"{server.url}/api/v1/conversations/{uno.id}/assign",
                json={"user_id": str(agent.user.id)},
                headers=bearer(admin),
            ).raise_for_status()
        )
        await wait_for(
            pilot,
            lambda: ("Assigned", f"#{uno.number} was assigned to you") in [(t[0], t[1]) for t in toasts(app)],
            "the toast",
        )

        await main.open_conversation(dos.id)  # Ana takes this one herself: no toast for it
        await pilot.press("f2")

        def assigned_seq() -> int | None:
            listed = api_get(server, agent.token, "/api/v1/events", after=0, limit=500)["events"]
            found = [
                e["seq"] for e in listed if e["type"] == "conversation.assigned" and e["data"]["id"] == dos.id
            ]
            return found[-1] if found else None

        seq = await wait_for(pilot, assigned_seq, "the assignment's event")
        await wait_for(pilot, lambda: (app.live.last_seq or 0) >= seq, "the event to reach the console")
        await pilot.pause()  # the console applies what it received
        assert len(main.ctx.store.rows(Tab.MINE)) == 2
        assert [t for t in toasts(app) if t[0] == "Assigned"] == [
            ("Assigned", f"#{uno.number} was assigned to you", "information")
        ]
