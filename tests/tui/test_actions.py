"""Every conversation action from the keyboard, through its dialog, against the real API."""

from __future__ import annotations

from typing import Any

import pytest

from max_tui.dialogs.close import CloseDialog
from max_tui.dialogs.priority import PriorityDialog
from max_tui.dialogs.search import SearchDialog
from max_tui.dialogs.transfer import TransferDialog
from max_tui.state import Tab
from tests.conftest import People
from tests.support.live import LiveServer
from tests.tui.conftest import Agent, Customers, api_get, ready_screen, wait_for
from tests.tui.test_live_console import started, type_text

pytestmark = pytest.mark.anyio


async def test_take_priority_unassign_transfer_close_reopen_and_search(
    console: Any, customers: Customers, people: People, agent: Agent, server: LiveServer
) -> None:
    people.team("billing", name="Billing")
    _, token = people.user("admin", "Alma")

    def conversation() -> dict[str, Any]:
        [found] = api_get(server, token, "/api/v1/conversations", status="all")["conversations"]
        return found

    app = console(token=token)
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        assert main.queue.active_tab is Tab.ALL
        await customers.say("quiero cambiar mi dirección")
        await wait_for(pilot, lambda: main.queue.option_list.option_count == 1, "the row in All open")
        main.queue.option_list.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: main.composer.has_focus, "the composer")

        await pilot.press("f2")
        await wait_for(pilot, lambda: (conversation()["assignee"] or {}).get("name") == "Alma", "assigned")
        await wait_for(pilot, lambda: main.ctx.store.rows(Tab.MINE), "Mine")

        await pilot.press("f5")
        await wait_for(pilot, lambda: ready_screen(app, PriorityDialog), "the priority dialog")
        await pilot.press("up", "up", "enter")  # from normal: high, urgent
        await wait_for(pilot, lambda: conversation()["priority"] == "urgent", "urgent")
        await wait_for(pilot, lambda: main.current and main.current.priority == "urgent", "urgent shown")
        assert "urgent" in str(main.query_one("#thread-header").render())

        await pilot.press("f3")
        await wait_for(pilot, lambda: conversation()["status"] == "queued", "back in the queue")
        await wait_for(pilot, lambda: not main.ctx.store.rows(Tab.MINE), "out of Mine")

        await pilot.press("f4")
        dialog = await wait_for(pilot, lambda: ready_screen(app, TransferDialog), "transfer")
        assert [value for value, _ in dialog.choices] == ["billing", "support"]
        await pilot.press("up", "enter")  # from the current team (support) up to billing
        await wait_for(pilot, lambda: (conversation()["team"] or {}).get("slug") == "billing", "transferred")

        await pilot.press("f6")
        await wait_for(pilot, lambda: ready_screen(app, CloseDialog), "the close dialog")
        await pilot.press("enter")  # resolved
        await wait_for(pilot, lambda: conversation()["status"] == "closed", "closed")
        await wait_for(pilot, lambda: main.queue.option_list.option_count == 0, "out of All open")

        await pilot.press("f7")
        await wait_for(pilot, lambda: conversation()["status"] != "closed", "reopened")
        await wait_for(pilot, lambda: main.queue.option_list.option_count == 1, "back in All open")

        await pilot.press("escape", "ctrl+f")
        search = await wait_for(pilot, lambda: ready_screen(app, SearchDialog), "search")
        await wait_for(pilot, lambda: search.searched == "" and search.results, "the recent conversations")
        await type_text(pilot, "dirección")  # the server searches message text too
        await wait_for(pilot, lambda: search.searched == "dirección", "the server's answer")
        assert [c.number for c in search.results] == [1]
        await type_text(pilot, " nada")
        await wait_for(pilot, lambda: search.searched == "dirección nada", "the server's answer")
        assert search.results == []
        for _ in " nada":
            await pilot.press("backspace")
        await wait_for(pilot, lambda: search.searched == "dirección" and search.results, "the match again")
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: app.screen is main and main.composer.has_focus, "the opened conversation"
        )
        assert main.current_id == conversation()["id"]
