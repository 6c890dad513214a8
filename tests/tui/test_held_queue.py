"""Against a real server: a new conversation held by the customer rate limit shows in a team
supervisor's queue, marked ``HELD`` with its preview collapsed, and not in an agent's; released,
it is an ordinary row for everyone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select

from max_server import clock
from max_server.db import Database
from max_server.models import Conversation
from max_tui.state import Tab, Viewer
from max_tui.widgets.queue import row_prompt
from tests.conftest import People, bearer
from tests.support.live import LiveServer
from tests.tui.conftest import Agent, Customers, wait_for
from tests.tui.test_live_console import row_texts, started
from tests.tui.test_rules import conversation, viewer

pytestmark = pytest.mark.anyio


@pytest.fixture
def rate_limits() -> dict[str, Any]:
    return {"messages_per_minute": 1}


async def a_held_conversation(customers: Customers, db: Database) -> str:
    """The customer's first conversation, closed long ago; within the minute, a new one, whose
    message is over the limit: held."""
    await customers.say("hola")
    with db.session() as session:
        first = session.exec(select(Conversation)).one()
        first.status, first.closed_at = "closed", clock.now() - timedelta(days=2)
        session.add(first)
        session.commit()
    await customers.say("¿hay alguien? necesito ayuda con mi cuenta")
    with db.session(write=False) as session:
        held = session.exec(select(Conversation).where(Conversation.status != "closed")).one()
    assert held.rate_limited
    return str(held.id)


async def test_a_held_conversation_is_marked_for_a_supervisor_and_hidden_from_agents(
    console: Any, customers: Customers, people: People, agent: Agent, db: Database, server: LiveServer
) -> None:
    supervisor, token = people.user("agent", "Sofía")
    people.join(agent.team, supervisor, "supervisor")
    _, admin = people.user("admin")
    held_id = await a_held_conversation(customers, db)

    app = console(token=token)
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        assert main.queue.active_tab is Tab.ALL  # team supervisors start on "All open"
        rows = await wait_for(pilot, lambda: row_texts(main), "the held row")
        assert main.queue.row_ids == [held_id]
        assert "HELD" in rows[0] and "held by the rate limit" in rows[0]
        assert "necesito ayuda" not in rows[0]  # collapsed: the text is in the thread, on demand

    agent_app = console()
    async with agent_app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        assert not main.ctx.store.rows(Tab.TEAM) and not main.ctx.store.rows(Tab.MINE)
        # Released (by an admin here): it reaches Ana live, as an ordinary row.
        with db.session(write=False) as session:
            customer_id = session.get(Conversation, int(held_id)).customer_id  # type: ignore[union-attr]
        lifted = httpx.post(
            server.url + f"/api/v1/rate-limits/blocks/{customer_id}/unblock", headers=bearer(admin)
        )
        assert lifted.status_code == 200
        await wait_for(pilot, lambda: main.ctx.store.rows(Tab.TEAM), "the released conversation")
        await pilot.press("ctrl+t")
        rows = await wait_for(pilot, lambda: row_texts(main), "the released row")
        assert "HELD" not in rows[0] and "necesito ayuda" in rows[0]


def test_the_held_rule_and_row_without_a_server() -> None:
    held = conversation("103").model_copy(update={"rate_limited": True, "last_message_preview": "spam"})
    member, team_supervisor = viewer(), viewer(team_role="supervisor")
    assert not any(member.belongs(held, tab) for tab in Tab)
    assert team_supervisor.belongs(held, Tab.TEAM) and team_supervisor.belongs(held, Tab.ALL)
    assert viewer("admin").belongs(held, Tab.ALL)
    global_supervisor: Viewer = viewer("supervisor")  # not a supervisor of this team
    assert not global_supervisor.belongs(held, Tab.ALL)
    text = str(row_prompt(held, clock.now(), 60, opened=False))
    assert "HELD" in text and "held by the rate limit" in text and "spam" not in text
    plain = str(row_prompt(held.model_copy(update={"rate_limited": False}), clock.now(), 60, opened=False))
    assert "HELD" not in plain and "spam" in plain
