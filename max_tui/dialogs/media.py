"""One attachment: what it is, its state, and what to do with it.

Opening the dialog asks the server for a fresh signed link (``GET /api/v1/media/{id}``); a file
still downloading, failed or expired says so with its reason instead (409 / 410). Images are
previewed inline with character cells (see ``max_tui.imaging``). ``s`` saves the file in the
Downloads folder, ``o`` hands it to the system's opener; each uses a link minted then.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from max_server.client import ApiError
from max_server.schemas import MediaLink, MediaRef
from max_tui.api import ConsoleApi
from max_tui.formatting import media_line
from max_tui.imaging import PreviewUnavailable, decode, half_blocks
from max_tui.media import MediaFetchError, MediaFiles

PREVIEW_COLUMNS, PREVIEW_ROWS = 48, 14


def problem_text(error: ApiError) -> str:
    """``media_pending`` / ``media_failed`` / ``media_expired``, with the server's reason."""
    reason = error.details.get("reason") if isinstance(error.details, dict) else None
    label = {"media_pending": "Still downloading", "media_failed": "Failed", "media_expired": "Expired"}.get(
        error.code, "Not available"
    )
    return f"{label}: {reason}" if reason else f"{label}: {error.message}"


class MediaDialog(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="media.close"),
        Binding("s", "save", "Save", id="media.save"),
        Binding("o", "open", "Open", id="media.open"),
    ]

    def __init__(self, api: ConsoleApi, files: MediaFiles, media: MediaRef) -> None:
        super().__init__()
        self.api, self.files, self.media = api, files, media
        self.link: MediaLink | None = None
        self.problem: str | None = None
        self.saved_to: str | None = None
        self.opened: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog media"):
            yield Label(media_line(self.media), classes="dialog-title", markup=False)
            yield Static(
                Content.styled("Asking the server for a link…", "$text-muted"), id="media-state", markup=False
            )
            yield Static("", id="media-preview", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (s)", id="media-save", variant="primary", disabled=True)
                yield Button("Open (o)", id="media-open", disabled=True)
            yield Label(
                "s save to Downloads · o open with the system · esc close",
                classes="dialog-hint",
                markup=False,
            )

    def on_mount(self) -> None:
        self.query_one("#media-preview", Static).display = False
        self.fetch_link()

    @work(exclusive=True, group="media-link", exit_on_error=False)
    async def fetch_link(self) -> MediaLink | None:
        state = self.query_one("#media-state", Static)
        try:
            link = await self.api.media_link(self.media.id)
        except ApiError as exc:
            self.problem = problem_text(exc) if exc.status in (409, 410) else exc.message
            state.update(Content.styled(self.problem, "$text-error"))
            return None
        self.link = link
        state.update(
            Content.assemble(("Ready", "$text-success"), (f" · {link.mime_type or ''}", "$text-muted"))
        )
        for button in self.query(Button):
            button.disabled = False
        if link.media_type in ("image", "sticker"):
            self.preview(link)
        return link

    @work(exclusive=True, group="media-preview", exit_on_error=False)
    async def preview(self, link: MediaLink) -> None:
        panel = self.query_one("#media-preview", Static)
        panel.display = True
        try:
            data = await self.files.read(link)
            pixels = await asyncio.to_thread(decode, data)
        except (MediaFetchError, PreviewUnavailable) as exc:
            panel.update(Content.styled(f"No preview: {exc}", "$text-muted"))
            return
        panel.update(half_blocks(pixels, PREVIEW_COLUMNS, PREVIEW_ROWS))

    async def _fresh(self) -> MediaLink | None:
        """A link minted now (the one from opening may have aged while the agent looked)."""
        try:
            self.link = await self.api.media_link(self.media.id)
        except ApiError as exc:
            self.notify(problem_text(exc) if exc.status in (409, 410) else exc.message, severity="error")
            return None
        return self.link

    @work(group="media-action", exit_on_error=False)
    async def action_save(self) -> None:
        if self.link is None or (link := await self._fresh()) is None:
            return
        try:
            path = await self.files.save(link)
        except (MediaFetchError, OSError) as exc:
            self.notify(f"Not saved: {exc}", severity="error")
            return
        self.saved_to = str(path)
        self.query_one("#media-state", Static).update(
            Content.assemble(("Saved to ", "$text-success"), str(path))
        )

    @work(group="media-action", exit_on_error=False)
    async def action_open(self) -> None:
        if self.link is None or (link := await self._fresh()) is None:
            return
        try:
            path = await self.files.open(link)
        except (MediaFetchError, OSError) as exc:
            self.notify(f"Cannot open it: {exc}", severity="error")
            return
        self.opened = str(path)
        self.query_one("#media-state", Static).update(
            Content.assemble(("Opened ", "$text-success"), str(path))
        )

    @on(Button.Pressed, "#media-save")
    def _save(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#media-open")
    def _open(self) -> None:
        self.action_open()

    def action_close(self) -> None:
        self.dismiss(None)
