"""Against a real server: an image arrives, its line turns from pending to stored live, opens in
the media dialog with an inline preview, is saved through a fresh link and handed to the system's
opener; a refused file shows its reason; messages held by the rate limit are collapsed for a
supervisor and expand."""

from __future__ import annotations

import io
import re
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


def jpeg(width: int, height: int, colour_at: Any) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (width, height))
    image.putdata([colour_at(x, y) for y in range(height) for x in range(width)])
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def span_colours(rendered: Any) -> list[tuple[int, int, int]]:
    """The foreground colour of each ``▀`` cell of a preview."""
    found = []
    for span in rendered.spans:
        match = re.match(r"#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2}) on ", str(span.style))
        if match:
            found.append(tuple(int(part, 16) for part in match.groups()))
    return found


async def test_a_whatsapp_photo_jpeg_is_previewed_inline(console: Any, customers: Customers) -> None:
    """WhatsApp delivers photos as JPEG: the preview decodes them (Pillow), not only PNG."""
    photo = jpeg(64, 32, lambda x, y: RED if x < 32 else (20, 20, 220))  # red left half, blue right
    app = console()
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await customers.say("hola")
        await open_only_conversation(pilot, main)
        await customers.send_file(photo, "image/jpeg", caption="así llegó")

        def item() -> Any:
            found = [main.thread.item(i) for i in main.thread.message_ids]
            return next((i for i in found if i and i.message.media), None)

        await wait_for(
            pilot, lambda: item() and item().message.media[0].status == "stored", "the stored photo"
        )
        item().focus()
        await pilot.press("enter")
        dialog = await wait_for(pilot, lambda: ready_screen(app, MediaDialog), "the media dialog")
        preview = dialog.query_one("#media-preview", Static)
        await wait_for(pilot, lambda: "▀" in str(preview.render()), "the inline preview")
        assert not dialog.problem
        lines = str(preview.render()).split("\n")
        assert len(lines) >= 8 and len(lines[0]) == 4 * len(lines)  # 64×32 pixels, two a cell vertically
        colours = span_colours(preview.render())
        reds = [c for c in colours if c[0] > 180 and c[1] < 80 and c[2] < 80]
        blues = [c for c in colours if c[2] > 160 and c[0] < 80]
        assert len(reds) > len(colours) // 3 and len(blues) > len(colours) // 3


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
