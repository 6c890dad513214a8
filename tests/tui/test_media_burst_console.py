"""Against a real server: an image arrives, its line turns from pending to stored live, opens in
the media dialog with an inline preview, is saved through a fresh link and handed to the system's
opener; a refused file shows its reason; messages held by the rate limit are collapsed for a
supervisor and expand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Collapsible, Static

from max_tui.dialogs.media import MediaDialog
from max_tui.imaging import encode_png
from max_tui.state import Tab
from max_tui.widgets.thread import HeldBurst
from tests.conftest import People
from tests.tui.conftest import Agent, Customers, ready_screen, wait_for
from tests.tui.test_live_console import row_texts, started

pytestmark = pytest.mark.anyio
RED, WHITE = (220, 20, 20), (255, 255, 255)


async def open_only_conversation(pilot: Any, main: Any, tab_key: bool = True) -> None:
    await wait_for(pilot, lambda: main.ctx.store.rows(Tab.TEAM), "the conversation")
    if tab_key:
        await pilot.press("ctrl+t")
    await wait_for(pilot, lambda: row_texts(main), "the row")
    main.queue.option_list.focus()
    await pilot.press("enter")
    await wait_for(pilot, lambda: main.thread.message_ids, "the thread")


async def test_an_image_is_previewed_saved_and_opened_with_a_fresh_link(
    console: Any, customers: Customers, tmp_path: Path
) -> None:
    pixels = [RED if (x // 4 + y // 4) % 2 else WHITE for y in range(16) for x in range(16)]
    image = encode_png(16, 16, pixels)
    app = console()
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await customers.say("hola")
        await open_only_conversation(pilot, main)
        await customers.send_file(image, "image/png", caption="el paquete llegó así")

        def item() -> Any:
            found = [main.thread.item(i) for i in main.thread.message_ids]
            return next((i for i in found if i and i.message.media), None)

        message = await wait_for(pilot, item, "the image message")
        await wait_for(pilot, lambda: item().message.media[0].status == "stored", "media.stored, live")
        assert "(pending)" not in str(item().render())

        item().focus()
        await pilot.press("enter")
        dialog = await wait_for(pilot, lambda: ready_screen(app, MediaDialog), "the media dialog")
        await wait_for(pilot, lambda: dialog.link is not None, "a fresh link")
        preview = dialog.query_one("#media-preview", Static)
        await wait_for(pilot, lambda: "▀" in str(preview.render()), "the inline preview")
        rendered = preview.render()
        assert any("#dc1414" in str(span.style) for span in rendered.spans)

        links_before = len(app.requests("GET", f"/api/v1/media/{message.message.media[0].id}"))
        await pilot.press("s")
        await wait_for(pilot, lambda: dialog.saved_to, "the saved file")
        saved = Path(dialog.saved_to)
        assert saved.parent == tmp_path / "downloads" and saved.read_bytes() == image
        await pilot.press("o")
        await wait_for(pilot, lambda: app.opened, "the system opener")
        assert app.opened[0].read_bytes() == image
        # Each action asked for a link minted then (links are never stored).
        assert len(app.requests("GET", f"/api/v1/media/{message.message.media[0].id}")) == links_before + 2


async def test_a_refused_file_shows_its_reason(console: Any, customers: Customers) -> None:
    app = console()
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await customers.say("hola")
        await open_only_conversation(pilot, main)
        await customers.send_file(b"RIFF" + b"\0" * 600_000, "image/webp")  # a sticker over 500 KB

        def sticker() -> Any:
            found = [main.thread.item(i) for i in main.thread.message_ids]
            return next((i for i in found if i and i.message.media), None)

        await wait_for(
            pilot, lambda: sticker() and sticker().message.media[0].status == "failed", "the refusal"
        )
        line = str(sticker().render())
        assert "(failed:" in line
        sticker().focus()
        await pilot.press("enter")
        dialog = await wait_for(pilot, lambda: ready_screen(app, MediaDialog), "the media dialog")
        await wait_for(pilot, lambda: dialog.problem, "the reason")
        assert dialog.problem.startswith("Failed: ")
        assert dialog.query_one("#media-save").disabled


@pytest.fixture
def rate_limits() -> dict[str, Any]:
    return {"messages_per_minute": 3}


async def test_held_messages_are_collapsed_for_a_supervisor_and_expand(
    console: Any, customers: Customers, people: People, agent: Agent
) -> None:
    supervisor, token = people.user("supervisor", "Sofía")
    people.join(agent.team, supervisor, "supervisor")
    app = console(token=token)
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await customers.say("hola")
        await open_only_conversation(pilot, main, tab_key=False)  # supervisors start on All open
        for number in range(2, 8):
            await customers.say(f"mensaje {number}")
        burst = await wait_for(
            pilot,
            lambda: main.thread.query(HeldBurst).first() if main.thread.query(HeldBurst) else None,
            "the collapsed burst",
        )
        await wait_for(pilot, lambda: burst.count == 4, "four held messages")
        assert burst.title == "4 messages held: rate limit"
        assert burst.collapsed
        assert len(main.thread.query(HeldBurst)) == 1
        contents = burst.query_one(Collapsible.Contents)
        assert not contents.display or burst.has_class("-collapsed")
        burst.query_one("CollapsibleTitle").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: not burst.collapsed, "expanded")
        assert all("rate limited" in str(i.render()) for i in burst.query("MessageItem"))

        # Reloaded from the API, they are collapsed the same way.
        main.load_thread(main.current_id)
        await wait_for(
            pilot,
            lambda: main.thread.query(HeldBurst) and main.thread.query(HeldBurst).first() is not burst,
            "the reloaded thread",
        )
        assert main.thread.query(HeldBurst).first().count == 4
