"""Canned responses: keep the list current (revalidated with its ``ETag``), fill a chosen
response's variables, insert the text where its ``/shortcut`` was, and count the use once the
reply is sent (``POST /{id}/used``: the agent may have edited the text, so it goes out as a
normal reply)."""

from __future__ import annotations

import asyncio
import logging
import time

from max_server.client import ApiError
from max_server.schemas import CannedResponsePublic
from max_tui.canned import missing_from, needs_render
from max_tui.dialogs.variables import VariablesForm
from max_tui.flows.base import Flow
from max_tui.widgets.canned_dropdown import CannedDropdown

log = logging.getLogger("max.tui.canned")
REVALIDATE_AFTER_S = 60.0


class CannedFlow(Flow):
    last_checked = 0.0

    def refresh(self, force: bool = False) -> None:
        """Revalidates the cached list (a cheap 304 when nothing changed)."""
        if force or time.monotonic() - self.last_checked > REVALIDATE_AFTER_S:
            self.last_checked = time.monotonic()
            self.run("canned-list", self._load, exclusive=True)

    async def _load(self) -> None:
        catalog = self.ctx.canned
        try:
            responses, etag = await self.api.canned(catalog.etag if catalog.loaded else None)
        except ApiError as exc:
            log.info("canned responses not loaded: %s", exc)
            return
        if responses is not None:
            # Indexing 10,000 responses takes a noticeable fraction of a second: not on the event
            # loop (the dropdown keeps searching the previous index meanwhile).
            await asyncio.to_thread(catalog.replace, responses, etag)
            self.screen.dropdown.update_for_target()

    def chosen(self, event: CannedDropdown.Chosen) -> None:
        response = event.response
        if not needs_render(response):
            self.insert(event.conversation_id, response, response.content, event.location)
            return
        self.run("canned-render", self._render, event)

    async def _render(self, event: CannedDropdown.Chosen) -> None:
        response, values = event.response, dict[str, str]()
        while True:
            try:
                rendered = await self.api.render_canned(response.id, event.conversation_id, values)
            except ApiError as exc:
                missing = missing_from(exc.details) if exc.code == "missing_variables" else []
                if not missing:
                    self.screen.notify(f"{response.shortcut}: {exc.message}", severity="error")
                    return
                given = await self.screen.app.push_screen_wait(VariablesForm(response, missing))
                if given is None:
                    return  # cancelled: the /shortcut is gone, nothing is inserted
                values = {**values, **given}
                continue
            self.insert(event.conversation_id, response, rendered.text, event.location)
            return

    def insert(
        self,
        conversation_id: str | None,
        response: CannedResponsePublic,
        text: str,
        location: tuple[int, int],
    ) -> None:
        composer = self.screen.composer
        if composer.conversation_id != conversation_id or conversation_id is None:
            self.screen.notify(f"{response.shortcut} was not inserted: another conversation is open.")
            return
        row = min(location[0], composer.document.line_count - 1)
        column = min(location[1], len(composer.document.get_line(row)))
        result = composer.insert(text, (row, column))
        composer.move_cursor(result.end_location)
        composer.focus()
        self.ctx.canned_pending.setdefault(conversation_id, set()).add(response.id)

    def sent(self, conversation_id: str) -> None:
        """The reply went out: count each response inserted into it."""
        for response_id in sorted(self.ctx.canned_pending.pop(conversation_id, set())):
            self.run("canned-used", self._used, response_id)

    async def _used(self, response_id: str) -> None:
        try:
            await self.api.canned_used(response_id)
        except ApiError as exc:
            log.info("canned use not counted: %s", exc)
