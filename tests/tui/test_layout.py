"""The console at its smallest (80×24) and without colour, on the recorded data: every footer key
shown is whole and inside the screen, the ones that matter stay (Template, SLA for supervisors,
Next/prev), the template dialog's Send button and keys stay in view, and ``NO_COLOR`` really
renders in greys only."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button
from textual.widgets._footer import FooterKey, FooterLabel, KeyGroup

from max_tui.dialogs.template import TemplateDialog
from max_tui.screens.main import MainScreen
from max_tui.widgets.footer import FittedFooter
from tests.tui.recorded import recorded_app

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_COLOR", "MAX_THEME", "COLORFGBG"):
        monkeypatch.delenv(name, raising=False)


async def until(pilot: Any, check: Any, what: str) -> Any:
    deadline = time.monotonic() + 10
    while not (result := check()):
        assert time.monotonic() < deadline, f"never saw {what}"
        await pilot.pause(0.02)
    return result


async def opened(pilot: Any, conversation_id: str | None = "101") -> MainScreen:
    app = pilot.app
    main: MainScreen = await until(
        pilot, lambda: isinstance(app.screen, MainScreen) and app.screen.loads and app.screen, "the queue"
    )
    if conversation_id is not None:
        await main.open_conversation(conversation_id, focus_composer=True)
        await until(pilot, lambda: main.thread.message_ids, "the thread")
    await pilot.pause()
    return main


def footer_items(main: MainScreen) -> list[Any]:
    footer = main.query_one(FittedFooter)
    return [w for w in footer.children if w.display and isinstance(w, FooterKey | KeyGroup | FooterLabel)]


def shown_actions(main: MainScreen) -> set[str]:
    return {
        key.action
        for key in main.query_one(FittedFooter).query(FooterKey)
        if key.display and key.parent.display
    }


@pytest.mark.parametrize("role", ["agent", "supervisor"])
async def test_the_footer_fits_80_columns_with_the_keys_that_matter(tmp_path: Path, role: str) -> None:
    app = recorded_app(tmp_path, role=role)
    async with app.run_test(size=(80, 24)) as pilot:
        main = await opened(pilot)
        await until(pilot, lambda: footer_items(main), "the footer keys")
        await pilot.pause()
        footer = main.query_one(FittedFooter)
        for item in footer_items(main):
            region = item.region
            assert region.right <= 80, (item, region)  # nothing clipped at the right edge
            if isinstance(item, FooterKey):
                text = item.key_display + (" " + item.description if item.description else "")
                assert region.width >= len(text), (item, region)  # whole, not cut
        wanted = {"template", "next", "previous", "close", "search"} | (
            {"sla"} if role == "supervisor" else set()
        )
        assert wanted <= shown_actions(main)
        assert footer.left_out  # 80 columns cannot show every key: the least important went
        assert set(footer.left_out) <= {"transfer", "priority", "unassign", "search", "resend"}
        palette = [k for k in footer.query(FooterKey) if k.has_class("-command-palette")]
        assert palette and palette[0].display  # everything left out is in the palette (^p)


async def test_wide_terminals_show_every_key(tmp_path: Path) -> None:
    app = recorded_app(tmp_path, role="supervisor")
    async with app.run_test(size=(140, 36)) as pilot:
        main = await opened(pilot)
        await until(pilot, lambda: footer_items(main), "the footer keys")
        assert main.query_one(FittedFooter).left_out == []
        assert {"unassign", "transfer", "priority", "close", "template", "sla", "resend"} <= shown_actions(
            main
        )


async def test_the_template_dialogs_send_button_stays_in_view_at_80x24(tmp_path: Path) -> None:
    app = recorded_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await opened(pilot)
        await pilot.press("f8")
        dialog = await until(
            pilot, lambda: isinstance(app.screen, TemplateDialog) and app.screen, "the dialog"
        )
        await until(pilot, lambda: dialog.query(".template-field"), "the fields")
        await pilot.press("down", "down", "enter", "J", "u", "a", "n", "enter")
        await pilot.pause()
        screen = app.screen.region
        send = dialog.query_one("#template-send", Button)
        hint = dialog.query_one(".dialog-hint")
        for widget in (send, hint, dialog.query_one("#template-preview")):
            assert screen.contains_region(widget.region) and widget.region.height >= 1, widget
        assert dialog.query_one("#template-fields").region.bottom <= send.region.y
        # The fields scroll in what is left: the focused one is visible.
        focused = app.screen.focused
        assert focused is not None and focused.region.height == 1 and screen.contains_region(focused.region)


def colours_in(svg: str) -> set[str]:
    return set(re.findall(r"(?:fill|color):\s*(#[0-9a-fA-F]{6})", svg))


def grey(colour: str) -> bool:
    return colour[1:3] == colour[3:5] == colour[5:7]


SVG_DEFAULT_FOREGROUND = "#c5c8c6"  # Rich's SVG template, not the console


@pytest.mark.parametrize("no_color", [True, False], ids=["NO_COLOR", "colour"])
async def test_no_color_renders_in_greys_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_color: bool
) -> None:
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    app = recorded_app(tmp_path, escalated=True)  # red badges, amber countdowns, failed ticks
    async with app.run_test(size=(80, 24)) as pilot:
        await opened(pilot, "105")
        used = colours_in(app.export_screenshot()) - {SVG_DEFAULT_FOREGROUND}
        coloured = {c for c in used if not grey(c)}
        if no_color:
            assert used and coloured == set(), coloured
        else:
            assert coloured  # the same screen has colour without NO_COLOR: the check can fail
