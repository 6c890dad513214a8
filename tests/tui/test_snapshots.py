"""Snapshots of the main screen (with the customer sidebar), the link, template and variables
dialogs and the SLA screen at 120×36 and 80×24 (fixed clock, fixed data: see recorded.py).

Update after an intended change with ``pytest tests/tui/test_snapshots.py --snapshot-update`` and
look at the SVGs in ``__snapshots__`` before committing them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Tabs
from textual.widgets._tabs import Underline

from max_server.schemas import ConversationPublic, Me, MessagePublic
from max_tui.dialogs.link import LinkDialog
from max_tui.dialogs.template import TemplateDialog
from max_tui.dialogs.variables import VariablesForm
from max_tui.screens.main import MainScreen
from max_tui.screens.sla import SlaScreen
from tests.tui.recorded import recorded_app, wire

SnapCompare = Callable[..., bool]


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_COLOR", "MAX_THEME", "COLORFGBG"):
        monkeypatch.delenv(name, raising=False)


def open_conversation(conversation_id: str | None) -> Callable[[Pilot[Any]], Any]:
    async def run_before(pilot: Pilot[Any]) -> None:
        app: Any = pilot.app
        deadline = time.monotonic() + 10
        while not (isinstance(app.screen, MainScreen) and app.screen.loads):
            assert time.monotonic() < deadline, "the recorded queue never loaded"
            await pilot.pause(0.02)
        main: MainScreen = app.screen
        main.composer.cursor_blink = False  # a blinking cursor is visible or not by chance
        if conversation_id is not None:
            await main.open_conversation(conversation_id, focus_composer=True)
            while not main.thread.message_ids:
                assert time.monotonic() < deadline, "the recorded thread never loaded"
                await pilot.pause(0.02)
        while not underline_settled(main):
            assert time.monotonic() < deadline, "the tab underline never settled"
            await pilot.pause(0.02)
        await pilot.pause()

    return run_before


def underline_settled(main: MainScreen) -> bool:
    """The active tab's underline spans its label (it follows a relabel a few refreshes later)."""
    tabs = main.query_one(Tabs)
    active = tabs.query_one("#tabs-list > Tab.-active")
    underline = tabs.query_one(Underline)
    start, end = active.virtual_region.shrink(active.styles.gutter).column_span
    return (underline.highlight_start, underline.highlight_end) == (start, end)


def test_recorded_wire_matches_the_schemas() -> None:
    data = wire()
    Me.model_validate(data["me"])
    for conversation in data["conversations"].values():
        ConversationPublic.model_validate(conversation)
    for messages in data["messages"].values():
        for message in messages:
            MessagePublic.model_validate(message)


def test_main_screen_wide(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app = recorded_app(tmp_path, drafts={"101": "Claro, ya lo reviso.\nDame un momento"})
    assert snap_compare(app, terminal_size=(120, 36), run_before=open_conversation("101"))


def test_main_screen_small(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app = recorded_app(tmp_path, drafts={"101": "Claro, ya lo reviso."})
    assert snap_compare(app, terminal_size=(80, 24), run_before=open_conversation("101"))


def test_main_screen_with_whatsapp_window_closed(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app = recorded_app(tmp_path)
    assert snap_compare(app, terminal_size=(80, 24), run_before=open_conversation("100"))


def test_main_screen_before_opening_a_conversation(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app = recorded_app(tmp_path)
    assert snap_compare(app, terminal_size=(120, 36), run_before=open_conversation(None))


def test_an_escalated_conversation(snap_compare: SnapCompare, tmp_path: Path) -> None:
    """The queue row's ``ESC`` badge and urgent priority, the thread's "▲ ESCALATED" with the
    missed first reply in red."""
    app = recorded_app(tmp_path, escalated=True)
    assert snap_compare(app, terminal_size=(80, 24), run_before=open_conversation("105"))


def test_main_screen_without_colour(
    snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``NO_COLOR``: monochrome, and the states still read (ticks, late, ESCALATED are words)."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = recorded_app(tmp_path, escalated=True)
    assert app.no_color
    assert snap_compare(app, terminal_size=(80, 24), run_before=open_conversation("101"))


def test_main_screen_light_theme(
    snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLORFGBG", "0;15")  # the terminal says: dark text on a light background
    app = recorded_app(tmp_path)
    assert app.theme == "textual-light"
    assert snap_compare(app, terminal_size=(80, 24), run_before=open_conversation("101"))


# Part 2: the sidebar, the link, template and variables dialogs, the SLA screen -----------------
def then(
    *steps: Callable[[Pilot[Any]], Any], conversation: str | None = "101"
) -> Callable[[Pilot[Any]], Any]:
    """Opens ``conversation`` as above, then runs ``steps`` and lets the screen settle."""
    opened = open_conversation(conversation)

    async def run_before(pilot: Pilot[Any]) -> None:
        await opened(pilot)
        main: MainScreen = pilot.app.screen  # type: ignore[assignment]
        await until(pilot, lambda: main.customer.loads or conversation is None, "the customer sidebar")
        for step in steps:
            await step(pilot)
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    return run_before


async def until(pilot: Pilot[Any], check: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, f"never saw {what}"
        await pilot.pause(0.02)


def keys(*pressed: str) -> Callable[[Pilot[Any]], Any]:
    async def step(pilot: Pilot[Any]) -> None:
        await pilot.press(*pressed)

    return step


def screen_ready(
    kind: type[Any], ready: Callable[[Any], object] = lambda s: True
) -> Callable[[Pilot[Any]], Any]:
    async def step(pilot: Pilot[Any]) -> None:
        await until(
            pilot, lambda: isinstance(pilot.app.screen, kind) and ready(pilot.app.screen), kind.__name__
        )

    return step


LINK_READY = screen_ready(LinkDialog, lambda s: not s.query_one("#link-confirm").disabled)
TEMPLATE_READY = screen_ready(TemplateDialog, lambda s: s.query(".template-field"))
FORM_READY = screen_ready(VariablesForm)
SLA_READY = screen_ready(SlaScreen, lambda s: s.loads)


@pytest.mark.parametrize("size", [(120, 36), (80, 24)], ids=["wide", "small"])
def test_main_screen_with_the_customer_sidebar(
    snap_compare: SnapCompare, tmp_path: Path, size: tuple[int, int]
) -> None:
    steps = [keys("ctrl+o")] if size[0] < 110 else []  # narrow terminals open it on demand
    assert snap_compare(recorded_app(tmp_path), terminal_size=size, run_before=then(*steps))


@pytest.mark.parametrize("size", [(120, 36), (80, 24)], ids=["wide", "small"])
def test_link_dialog(snap_compare: SnapCompare, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(
        recorded_app(tmp_path), terminal_size=size, run_before=then(keys("ctrl+l"), LINK_READY)
    )


@pytest.mark.parametrize("size", [(120, 36), (80, 24)], ids=["wide", "small"])
def test_template_dialog(snap_compare: SnapCompare, tmp_path: Path, size: tuple[int, int]) -> None:
    steps = (keys("f8"), TEMPLATE_READY, keys("down", "down", "enter", "J", "u", "a", "n", "enter"))
    assert snap_compare(recorded_app(tmp_path), terminal_size=size, run_before=then(*steps))


@pytest.mark.parametrize("size", [(120, 36), (80, 24)], ids=["wide", "small"])
def test_variables_form(snap_compare: SnapCompare, tmp_path: Path, size: tuple[int, int]) -> None:
    steps = (keys("/", "p", "e", "d", "tab"), FORM_READY, keys("O", "R", "D", "-", "1"))
    assert snap_compare(recorded_app(tmp_path), terminal_size=size, run_before=then(*steps))


@pytest.mark.parametrize("size", [(120, 36), (80, 24)], ids=["wide", "small"])
def test_sla_screen(snap_compare: SnapCompare, tmp_path: Path, size: tuple[int, int]) -> None:
    app = recorded_app(tmp_path, role="supervisor")
    assert snap_compare(app, terminal_size=size, run_before=then(keys("f10"), SLA_READY, conversation=None))
