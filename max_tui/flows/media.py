"""Attachments: Enter on a message with files (or F9 for every file of the conversation) opens
one in the media dialog (save, open with the system, preview)."""

from __future__ import annotations

from max_server.schemas import MediaRef, MessagePublic
from max_tui.dialogs.choice import ChoiceDialog
from max_tui.dialogs.media import MediaDialog
from max_tui.flows.base import Flow
from max_tui.formatting import media_line


class MediaFlow(Flow):
    def open_message(self, message: MessagePublic) -> None:
        self.choose(list(message.media))

    def open_any(self) -> None:
        if self.screen.need_current() is None:
            return
        files = [media for message in reversed(self.screen.thread.media_messages) for media in message.media]
        if not files:
            self.screen.notify("No attachments in this conversation.", severity="warning")
            return
        self.choose(files)

    def choose(self, files: list[MediaRef]) -> None:
        if len(files) == 1:
            self.screen.app.push_screen(MediaDialog(self.api, self.ctx.files, files[0]))
            return
        self.run("media-choose", self._choose, files)

    async def _choose(self, files: list[MediaRef]) -> None:
        by_id = {media.id: media for media in files}
        chosen = await self.screen.app.push_screen_wait(
            ChoiceDialog("Attachments", [(media.id, media_line(media)) for media in files])
        )
        if chosen is not None:
            await self.screen.app.push_screen(MediaDialog(self.api, self.ctx.files, by_id[chosen]))
