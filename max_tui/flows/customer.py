"""The customer beside the conversation: load the context document into the sidebar, keep it
current (``customer.linked``, ``customer.unlinked``, ``customer.tagged`` events), link another
record into it (Ctrl+L), undo a link, edit tags (Ctrl+G), open an earlier conversation."""

from __future__ import annotations

import asyncio
from typing import Any

from max_server.client import ApiError
from max_server.schemas import ConversationPublic, LinkPublic
from max_tui.dialogs.confirm import ConfirmDialog
from max_tui.dialogs.history import HistoryDialog
from max_tui.dialogs.link import LinkDialog
from max_tui.dialogs.tags import TagsDialog
from max_tui.flows.base import Flow
from max_tui.widgets.context import ContextPane

CUSTOMER_EVENTS = ("customer.linked", "customer.unlinked", "customer.tagged")


class CustomerFlow(Flow):
    shown_customer: str | None = None
    loads = 0

    @property
    def pane(self) -> ContextPane:
        return self.screen.query_one(ContextPane)

    def load(self, conversation: ConversationPublic | None, force: bool = False) -> None:
        """Loads the sidebar for ``conversation``'s customer (again only when it changed)."""
        customer_id = conversation.customer.id if conversation else None
        if customer_id == self.shown_customer and not force:
            return
        self.shown_customer = customer_id
        if conversation is None:
            return
        if not force:
            self.pane.show_loading()
        self.run("customer-context", self._load, conversation.id, conversation.customer.id, exclusive=True)

    async def _load(self, conversation_id: str, customer_id: str) -> None:
        try:
            document, links = await asyncio.gather(
                self.api.customer_context(customer_id, exclude_conversation_id=conversation_id),
                self.api.customer_links(customer_id),
            )
            names = await self._names(links, customer_id)
        except ApiError as exc:
            if self.shown_customer == customer_id:
                self.pane.show_error(f"Customer not available: {exc.message}")
            return
        if self.shown_customer != customer_id:
            return  # the agent moved on
        self.pane.show_customer(document, links, names, self.ctx.now(), customer_id)
        self.loads += 1

    async def _names(self, links: list[LinkPublic], customer_id: str) -> dict[str, str | None]:
        wanted = {
            link.secondary_customer_id
            for link in links
            if link.unlinked_at is None and link.primary_customer_id == customer_id
        }
        names: dict[str, str | None] = {}
        for secondary in sorted(wanted):
            try:
                names[secondary] = (await self.api.customer(secondary)).name
            except ApiError:
                names[secondary] = None
        return names

    def on_event(self, data: dict[str, Any]) -> None:
        """A link, undo or tag change: reload when it concerns the customer on screen."""
        involved = {
            str(data.get(key)) for key in ("primary_customer_id", "secondary_customer_id", "customer_id")
        }
        conversation = self.screen.current
        if conversation is not None and conversation.customer.id in involved:
            self.load(conversation, force=True)

    # Link and undo ---------------------------------------------------------------------------
    def link(self) -> None:
        conversation = self.screen.need_current()
        if conversation is not None:
            self.run("customer-link", self._link, conversation)

    async def _link(self, conversation: ConversationPublic) -> None:
        try:
            primary = await self.api.customer(conversation.customer.id)
        except ApiError as exc:
            self.screen.notify(exc.message, title="Cannot link", severity="error")
            return
        secondary = await self.screen.app.push_screen_wait(LinkDialog(self.api, primary))
        if secondary is None:
            return
        try:
            link = await self.api.link(primary.id, secondary)
        except ApiError as exc:
            self.screen.notify(exc.message, title="Not linked", severity="error")
            return
        moved = link.moved
        self.screen.notify(
            f"Linked: {moved.identities} identities and {moved.conversations} conversations moved",
            timeout=4,
        )
        self.load(conversation, force=True)

    def undo(self, link_id: str) -> None:
        self.run("customer-undo", self._undo, link_id)

    async def _undo(self, link_id: str) -> None:
        confirmed = await self.screen.app.push_screen_wait(
            ConfirmDialog(
                "Undo this link?",
                "Identities, conversations, transactions, tickets and tags go back to the other "
                "customer, exactly as before the link.",
                confirm="Undo link",
            )
        )
        if not confirmed:
            return
        try:
            await self.api.undo_link(link_id)
        except ApiError as exc:
            self.screen.notify(exc.message, title="Not undone", severity="error")
            return
        self.screen.notify("Link undone: both customers are as they were", timeout=4)
        conversation = self.screen.current
        if conversation is not None:
            self.load(conversation, force=True)

    def undo_latest(self) -> None:
        link = self.pane.undoable
        if link is None:
            self.screen.notify("No link to undo for this customer.", severity="warning")
        else:
            self.undo(link.link_id)

    # Tags and history ------------------------------------------------------------------------
    def edit_tags(self) -> None:
        conversation = self.screen.need_current()
        document = self.pane.document
        if conversation is None:
            return
        if document is None:
            self.screen.notify("The customer is still loading.", severity="warning")
            return
        self.run(
            "tags", self._tags, conversation, document.customer.name or "the customer", list(document.tags)
        )

    async def _tags(self, conversation: ConversationPublic, name: str, tags: list[str]) -> None:
        edit = await self.screen.app.push_screen_wait(TagsDialog(name, tags))
        if edit is None or not (edit.add or edit.remove):
            return
        customer_id = conversation.customer.id
        try:
            if edit.add:
                await self.api.add_tags(customer_id, edit.add)
            if edit.remove:
                await self.api.remove_tags(customer_id, edit.remove)
        except ApiError as exc:
            self.screen.notify(exc.message, title="Tags not saved", severity="error")
        self.load(conversation, force=True)

    def open_history(self, conversation_id: str) -> None:
        self.screen.app.push_screen(HistoryDialog(self.api, conversation_id, self.ctx.now, self.ctx.tz))
