"""The console's pure rules: which tab a conversation belongs to, how events update what it holds,
how times, sizes and delivery states read, and how drafts are stored."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from max_server.schemas import ConversationPublic, Me, MessagePublic, TeamRef
from max_tui.app import pick_theme
from max_tui.dialogs.search import matches
from max_tui.formatting import (
    clock_time,
    compact_duration,
    delivery_label,
    human_size,
    media_line,
    waiting_label,
    window_open,
)
from max_tui.state import ConversationStore, Tab, Viewer, delivery_moves_forward
from max_tui.storage import DraftStore, read_json
from tests.tui.recorded import FIXED_NOW, wire

NOW = FIXED_NOW


def conversation(id_: str = "101", **changes: Any) -> ConversationPublic:
    return ConversationPublic.model_validate(wire()["conversations"][id_]).model_copy(update=changes)


def message(**changes: Any) -> MessagePublic:
    return MessagePublic.model_validate(wire()["messages"]["101"][0]).model_copy(update=changes)


def viewer(role: str = "agent", team_role: str = "member") -> Viewer:
    recorded = wire()["me"]
    teams = [{**team, "role": team_role} for team in recorded["teams"]]
    return Viewer.from_me(Me.model_validate({**recorded, "role": role, "teams": teams}))


def test_tabs_follow_status_assignee_and_team() -> None:
    ana = viewer()
    mine, queued = conversation("101"), conversation("103")
    assert ana.belongs(mine, Tab.MINE) and not ana.belongs(mine, Tab.TEAM)
    assert ana.belongs(queued, Tab.TEAM) and not ana.belongs(queued, Tab.MINE)
    closed = mine.model_copy(update={"status": "closed"})
    assert not any(ana.belongs(closed, tab) for tab in Tab)
    elsewhere = queued.model_copy(update={"team": TeamRef(id="9", slug="billing", name="Billing")})
    assert not ana.belongs(elsewhere, Tab.TEAM)  # transferred away: out of our queue
    assert ana.tabs == (Tab.MINE, Tab.TEAM) and ana.first_tab is Tab.MINE
    assert viewer(team_role="supervisor").first_tab is Tab.ALL
    assert viewer("admin").belongs(elsewhere, Tab.ALL)


def test_the_store_keeps_the_newest_state_and_follows_messages() -> None:
    store = ConversationStore(viewer())
    held = conversation("103")
    store.replace_all([held])
    older = held.model_copy(update={"priority": "low", "updated_at": held.updated_at - timedelta(seconds=5)})
    assert not store.upsert(older)
    assert store.get("103") == held

    inbound = message(
        id="9", conversation_id="103", content_text="  otra   vez\nhola ", customer_time=NOW, created_at=NOW
    )
    assert store.note_message(inbound)
    updated = store.get("103")
    assert updated is not None
    assert updated.last_message_preview == "otra vez hola"
    assert updated.last_customer_message_at == NOW
    assert updated.window_expires_at == NOW + timedelta(hours=24)
    assert not store.note_message(inbound.model_copy(update={"conversation_id": "999"}))

    # A conversation event that trails the message keeps the message's preview and times.
    later = held.updated_at + timedelta(seconds=1)
    trailing = held.model_copy(update={"priority": "high", "updated_at": later})
    assert store.upsert(trailing)
    kept = store.get("103")
    assert kept is not None and kept.priority == "high" and kept.last_message_preview == "otra vez hola"


def test_rows_are_latest_activity_first() -> None:
    store = ConversationStore(viewer())
    store.replace_all([conversation(i) for i in ("100", "101", "102", "103", "104")])
    assert [c.number for c in store.rows(Tab.MINE)] == [42, 41, 38]
    assert [c.number for c in store.rows(Tab.TEAM)] == [44, 43]
    assert store.counts() == {Tab.MINE: 3, Tab.TEAM: 2}


@pytest.mark.parametrize(
    ("current", "new", "moves"),
    [
        ("pending", "sent", True),
        ("sent", "pending", False),
        ("read", "delivered", False),
        ("sent", "failed", True),
        ("delivered", "failed", False),
        ("failed", "sent", False),
        ("sending", "unknown", True),
        ("unknown", "sent", True),
        ("sent", "unknown", False),
        ("read", "read", True),
    ],
)
def test_delivery_states_never_go_backwards(current: str, new: str, moves: bool) -> None:
    assert delivery_moves_forward(current, new) is moves


def test_times_sizes_and_waiting() -> None:
    durations = [compact_duration(timedelta(seconds=s)) for s in (5, 125, 7300, 200000)]
    assert durations == ["5s", "2m", "2h", "2d"]
    sizes = [human_size(n) for n in (None, 900, 251904, 1572864)]
    assert sizes == ["size unknown", "900 B", "246 KB", "1.5 MB"]
    assert clock_time(NOW - timedelta(minutes=5), NOW, UTC) == "14:55"
    assert clock_time(datetime(2026, 3, 1, 12, 0, tzinfo=UTC), NOW, UTC) == "Sun 12:00"
    assert clock_time(datetime(2026, 1, 9, 8, 0, tzinfo=UTC), NOW, UTC) == "9 Jan 08:00"
    assert clock_time(datetime(2025, 1, 9, 8, 0, tzinfo=UTC), NOW, UTC) == "9 Jan 2025"
    assert waiting_label(conversation("101"), NOW) == "8m"  # the customer spoke last
    assert waiting_label(conversation("102"), NOW) == ""  # the agent did
    assert window_open(conversation("101"), NOW)
    assert not window_open(conversation("100"), NOW)
    assert window_open(conversation("102"), NOW)  # the Chat App has no 24 h window


def test_ticks_errors_and_media_lines() -> None:
    failed = MessagePublic.model_validate(wire()["messages"]["101"][3])
    assert delivery_label(failed) == "✗ failed — 131026 Message undeliverable: Unable to deliver message"
    assert delivery_label(failed.model_copy(update={"delivery_status": "read"})) == "✓✓ read"
    unknown = failed.model_copy(update={"delivery_status": "unknown", "error": None})
    assert "may not have reached the customer" in delivery_label(unknown)
    document = MessagePublic.model_validate(wire()["messages"]["101"][5]).media[0]
    assert media_line(document) == "[document] 1.5 MB factura-1234.pdf (pending)"
    expired = document.model_copy(update={"status": "expired", "filename": None})
    assert media_line(expired) == "[document] 1.5 MB application/pdf (expired)"


def test_search_matches_every_word_and_exact_numbers_first() -> None:
    everything = [conversation(i) for i in ("100", "101", "102", "103", "104")]
    assert [c.number for c in matches(everything, "pedido juan")] == [42]
    assert matches(everything, "#41")[0].number == 41
    assert matches(everything, "nadie dijo esto") == []


def test_drafts_are_per_server_and_user_and_written_atomically(tmp_path: Path) -> None:
    drafts = DraftStore(tmp_path, "http://a.example", "7")
    drafts.set("101", "hola\nmundo")
    drafts.set("102", "   ")  # blank drafts are not kept
    drafts.save()
    assert stat.S_IMODE(drafts.path.stat().st_mode) == 0o600
    assert json.loads(drafts.path.read_text())["drafts"] == {"101": "hola\nmundo"}
    assert DraftStore(tmp_path, "http://a.example/", "7").get("101") == "hola\nmundo"
    assert DraftStore(tmp_path, "http://b.example", "7").get("101") == ""
    assert DraftStore(tmp_path, "http://a.example", "8").get("101") == ""
    assert [p.name for p in drafts.path.parent.iterdir()] == [drafts.path.name]  # no temporary left
    drafts.path.write_text("{not json")
    assert read_json(drafts.path) == {}
    assert DraftStore(tmp_path, "http://a.example", "7").get("101") == ""  # a broken file is not fatal


def test_theme_follows_the_terminal_and_the_agent() -> None:
    assert pick_theme(None, {}) == "textual-dark"
    assert pick_theme(None, {"COLORFGBG": "0;15"}) == "textual-light"
    assert pick_theme(None, {"COLORFGBG": "15;0"}) == "textual-dark"
    assert pick_theme("nord", {"COLORFGBG": "0;15"}) == "nord"
    assert pick_theme("nord", {"MAX_THEME": "textual-light"}) == "textual-light"


def test_no_color_turns_the_console_monochrome(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from max_tui.app import MaxApp

    monkeypatch.setenv("NO_COLOR", "1")
    assert MaxApp("http://max.test", "max_x", data_dir=tmp_path).no_color
    monkeypatch.delenv("NO_COLOR")
    assert not MaxApp("http://max.test", "max_x", data_dir=tmp_path).no_color


def test_the_console_imports_no_server_code() -> None:
    heavy = ("sqlalchemy", "sqlmodel", "fastapi", "alembic", "psycopg", "uvicorn", "boto3")
    code = (
        "import sys, pkgutil, importlib, max_tui\n"
        "for m in pkgutil.walk_packages(max_tui.__path__, 'max_tui.'):\n"
        "    importlib.import_module(m.name)\n"
        "import max_cli.commands.tui\n"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert result.stdout.strip() == ""


@pytest.mark.anyio
async def test_a_chosen_theme_is_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.tui.recorded import recorded_app

    for name in ("MAX_THEME", "COLORFGBG"):
        monkeypatch.delenv(name, raising=False)
    app = recorded_app(tmp_path)
    async with app.run_test() as pilot:
        app.theme = "nord"
        for _ in range(500):  # up to 10 s on a loaded machine
            if read_json(tmp_path / "console.json").get("theme") == "nord":
                break
            await pilot.pause(0.02)
    assert read_json(tmp_path / "console.json") == {"theme": "nord"}
    assert recorded_app(tmp_path).theme == "nord"
