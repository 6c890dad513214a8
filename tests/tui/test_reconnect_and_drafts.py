"""The live stream survives a drop (resuming after the last seq); drafts survive switching
conversations and restarting the console."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from max_tui.screens.main import MainScreen
from max_tui.state import Tab
from max_tui.widgets.top_bar import TopBar
from tests.tui.conftest import Customers, wait_for
from tests.tui.test_live_console import started, type_text

pytestmark = pytest.mark.anyio


def thread_texts(main: MainScreen) -> list[str]:
    return [item.message.content_text or "" for item in main.thread._items.values()]


async def test_after_a_drop_the_console_resumes_after_its_last_seq_and_misses_nothing(
    console: Any, customers: Customers
) -> None:
    app = console()
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await customers.say("primer mensaje")
        await wait_for(pilot, lambda: main.ctx.store.rows(Tab.TEAM), "the conversation")
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: main.queue.option_list.option_count, "the row")
        main.queue.option_list.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: thread_texts(main) == ["primer mensaje"], "the thread")
        seen_seq = app.live.last_seq
        assert seen_seq is not None

        await app.live.drop(hold=True)  # the connection goes away and stays away for now
        bar = main.query_one(TopBar)
        await wait_for(pilot, lambda: bar.live_state == "reconnecting", "the reconnecting state")
        assert "reconnecting" in str(bar.query_one("#live-state").render())

        await customers.say("segundo mensaje")
        await customers.say("tercer mensaje")
        await pilot.pause(0.5)
        assert thread_texts(main) == ["primer mensaje"]  # nothing arrives without the stream

        app.live.resume()
        await wait_for(
            pilot,
            lambda: thread_texts(main) == ["primer mensaje", "segundo mensaje", "tercer mensaje"],
            "both messages after reconnecting",
        )
        assert app.live.last_url is not None and app.live.last_url.endswith(f"?after={seen_seq}")
        assert app.live.connections == 2
        await wait_for(pilot, lambda: bar.live_state == "live", "the live state")
        [row] = main.ctx.store.rows(Tab.TEAM)
        assert row.last_message_preview == "tercer mensaje"
        assert main.loads == 1  # resumed, not reloaded: the replay carried what was missed


async def test_drafts_survive_switching_conversations_and_a_restart(
    console: Any, customers: Customers, tmp_path: Path
) -> None:
    data_dir = tmp_path / "agent-data"
    app = console(data_dir=data_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await customers.say("soy Juan", wa_id="5215500000001", name="Juan")
        await customers.say("soy María", wa_id="5215500000002", name="María")
        await wait_for(pilot, lambda: len(main.ctx.store.rows(Tab.TEAM)) == 2, "two conversations")
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: main.queue.option_list.option_count == 2, "two rows")
        main.queue.option_list.focus()
        await pilot.press("enter")  # the newest: María
        await wait_for(pilot, lambda: main.composer.has_focus, "the composer")
        maria = main.current_id
        await type_text(pilot, "Hola María")
        await pilot.press("ctrl+j")
        await type_text(pilot, "segunda línea")
        await pilot.press("ctrl+down")  # next conversation: Juan
        await wait_for(pilot, lambda: main.current_id != maria, "the next conversation")
        juan = main.current_id
        assert juan is not None and maria is not None
        assert main.composer.text == ""
        await type_text(pilot, "Hola Juan")
        await pilot.press("ctrl+up")  # back to María: her draft is still there
        await wait_for(pilot, lambda: main.current_id == maria, "María again")
        assert main.composer.text == "Hola María\nsegunda línea"
        await pilot.press("ctrl+q")

    [drafts_file] = (data_dir / "drafts").glob("*.json")
    assert stat.S_IMODE(drafts_file.stat().st_mode) == 0o600
    assert json.loads(drafts_file.read_text())["drafts"] == {
        maria: "Hola María\nsegunda línea",
        juan: "Hola Juan",
    }

    again = console(data_dir=data_dir)
    async with again.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await main.open_conversation(juan, focus_composer=True)
        assert main.composer.text == "Hola Juan"
        await main.open_conversation(maria)
        assert main.composer.text == "Hola María\nsegunda línea"
