"""Starting the console: unreachable server and refused token (with retry), presence heartbeat,
the first tab per role, and the actions offered in the footer and the command palette."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandList, CommandPalette
from textual.widgets import Label

from max_server.app import create_app
from max_server.db import Database
from max_server.settings import Settings
from max_tui.dialogs.search import SearchDialog
from max_tui.screens.connection import ConnectionProblemScreen
from max_tui.screens.main import MainScreen
from max_tui.state import Tab
from tests.conftest import People
from tests.support.live import LiveServer, free_port
from tests.tui.conftest import Agent, api_get, ready_screen, wait_for
from tests.tui.test_live_console import started, type_text

pytestmark = pytest.mark.anyio

ACTIONS = {"take", "unassign", "transfer", "priority", "close", "reopen", "search", "next", "previous"}


def palette_hits(app: Any) -> list[Any]:
    palette = ready_screen(app, CommandPalette)
    if palette is None:
        return []
    hits = palette.query_one(CommandList)
    return [hits.get_option_at_index(i).prompt for i in range(hits.option_count)]


def problem_screen(app: Any) -> ConnectionProblemScreen | None:
    return ready_screen(app, ConnectionProblemScreen)


async def test_an_unreachable_server_gets_a_clear_screen_and_retry_connects(
    console: Any, agent: Agent, settings: Settings, db: Database
) -> None:
    port = free_port()
    app = console(url=f"http://127.0.0.1:{port}")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await wait_for(pilot, lambda: problem_screen(app), "the problem screen")
        assert str(screen.query_one("#problem-title", Label).render()) == "Cannot reach the MAX server"
        with LiveServer(create_app(settings, db=db, background=False), port=port):
            await pilot.press("r")
            await started(pilot)
            await pilot.press("ctrl+q")


async def test_a_refused_token_says_so(console: Any) -> None:
    app = console(token="max_not-a-real-token")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await wait_for(pilot, lambda: problem_screen(app), "the problem screen")
        assert str(screen.query_one("#problem-title", Label).render()) == "The server refused your token"
        assert "max login" in str(screen.query_one("#problem-body").render())
        await pilot.press("r")  # still refused: the screen comes back
        await wait_for(pilot, lambda: problem_screen(app) not in (None, screen), "the problem screen again")
        assert app.main is None


async def test_presence_is_online_while_running_and_offline_after_quitting(
    console: Any, agent: Agent, server: LiveServer
) -> None:
    def presence() -> str:
        return str(api_get(server, agent.token, "/api/v1/me")["presence"])

    assert presence() == "offline"
    app = console()
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await wait_for(pilot, lambda: app.online, "the first heartbeat")
        assert presence() == "online"
        await pilot.press("ctrl+q")
    assert presence() == "offline"


async def test_the_heartbeat_repeats_while_the_console_runs(
    console: Any, agent: Agent, server: LiveServer, db: Database
) -> None:
    """Not only the first: every ``heartbeat_seconds`` the console says it is online again (so
    the server's sweep never turns a working agent ``away``), and ``last_seen_at`` moves on."""
    from max_server.models import User

    def last_seen() -> Any:
        with db.session(write=False) as session:
            user = session.get(User, agent.user.id)
            assert user is not None
            return user.last_seen_at

    app = console(heartbeat_seconds=0.2)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await wait_for(pilot, lambda: len(app.requests("PUT", "/me/presence")) >= 1, "the first heartbeat")
        first_seen = last_seen()
        await wait_for(pilot, lambda: len(app.requests("PUT", "/me/presence")) >= 3, "more heartbeats")
        beats = [e for e in app.recorder.exchanges if e.path == "/api/v1/me/presence"]
        assert all(e.status == 200 for e in beats) and len(beats) >= 2
        await wait_for(pilot, lambda: last_seen() != first_seen, "last_seen_at to move on")
        assert api_get(server, agent.token, "/api/v1/me")["presence"] == "online"


async def test_supervisors_open_on_all_open_and_agents_on_mine(
    console: Any, people: People, agent: Agent
) -> None:
    supervisor, token = people.user("supervisor", "Sol")
    people.join(agent.team, supervisor, "supervisor")
    app = console(token=token)
    async with app.run_test(size=(100, 30)) as pilot:
        main = await started(pilot)
        assert main.queue.active_tab is Tab.ALL
        assert [t.id for t in main.query("Tab")] == ["tab-mine", "tab-team", "tab-all"]
    app = console()
    async with app.run_test(size=(100, 30)) as pilot:
        main = await started(pilot)
        assert main.queue.active_tab is Tab.MINE
        assert [t.id for t in main.query("Tab")] == ["tab-mine", "tab-team"]


async def test_every_action_has_a_key_in_the_footer_and_a_palette_command(
    console: Any, tmp_path: Path
) -> None:
    app = console()
    async with app.run_test(size=(120, 36)) as pilot:
        main: MainScreen = await started(pilot)
        shown = {b.binding.action for b in main.active_bindings.values() if b.binding.show}
        assert shown >= ACTIONS
        commands = {c.title for c in app.get_system_commands(main)}
        assert {
            "Assign the open conversation to me",
            "Put the open conversation back in its team's queue",
            "Transfer the open conversation to another team",
            "Change the open conversation's priority",
            "Close the open conversation with a reason",
            "Reopen the open conversation",
            "Search conversations",
            "Open the next conversation",
            "Open the previous conversation",
        } <= commands
        await pilot.press("ctrl+p")
        await type_text(pilot, "Search conversations")
        await wait_for(pilot, lambda: palette_hits(app), "the palette's hits")
        assert "Search conversations" in str(palette_hits(app)[0])
        await pilot.press("down", "enter")  # the palette searches in the background
        await wait_for(pilot, lambda: ready_screen(app, SearchDialog), "the search dialog, from the palette")
