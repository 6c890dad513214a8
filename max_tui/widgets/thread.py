"""The open conversation: a one-line header (with the SLA countdown and the escalated badge) and
its messages, oldest first, newest at the bottom.

Messages held by the customer rate limit (``rate_limited``; only supervisors and admins get
them) that arrive in a row are collapsed into one line, "12 messages held: rate limit", which
Enter or a click expands.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, tzinfo

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Collapsible, Static

from max_server.schemas import ConversationPublic, MediaPublic, MessagePublic
from max_tui.formatting import channel_label
from max_tui.sla import Level, Policies, countdown, escalated
from max_tui.state import can_resend, delivery_moves_forward
from max_tui.widgets.message import MessageItem

EMPTY_HINT = "No conversation open: pick one in the queue (⏎)"
HELD = "rate_limited"


def header_content(conversation: ConversationPublic) -> Content:
    parts: list[str | tuple[str, str]] = [
        (f"#{conversation.number} ", "$text-muted"),
        (conversation.customer.name or "Unknown customer", "bold"),
        (f" · {channel_label(conversation.channel)}", "$text-muted"),
    ]
    if conversation.team is not None:
        parts.append((f" · {conversation.team.name}", "$text-muted"))
    status = conversation.status
    if conversation.assignee is not None and status != "closed":
        parts.append((f" · {conversation.assignee.name}", ""))
    else:
        parts.append((f" · {status}", "$text-warning" if status == "queued" else "$text-muted"))
    if conversation.priority in ("high", "urgent"):
        parts.append((f" · {conversation.priority}", "$text-error bold"))
    return Content.assemble(*parts)


def held_title(count: int) -> str:
    return f"{count} message{'s' if count != 1 else ''} held: rate limit"


class HeldBurst(Collapsible):
    """Consecutive rate-limited messages, collapsed."""

    def __init__(self, items: list[MessageItem]) -> None:
        super().__init__(*items, title=held_title(len(items)), collapsed=True, classes="held-burst")
        self.count = len(items)

    async def add(self, item: MessageItem) -> None:
        self.count += 1
        self.title = held_title(self.count)
        await self.query_one(Collapsible.Contents).mount(item)


class ThreadView(Vertical):
    def __init__(self, tz: tzinfo, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.tz = tz
        self.conversation_id: str | None = None
        self.customer_name: str | None = None
        self._items: dict[str, MessageItem] = {}

    def compose(self) -> ComposeResult:
        with Horizontal(id="thread-top"):
            yield Static(EMPTY_HINT, id="thread-header", markup=False)
            yield Static("", id="thread-sla", markup=False)
        yield VerticalScroll(id="thread-messages", can_focus=True)

    @property
    def scroller(self) -> VerticalScroll:
        return self.query_one("#thread-messages", VerticalScroll)

    @property
    def message_ids(self) -> list[str]:
        return list(self._items)

    def item(self, message_id: str) -> MessageItem | None:
        return self._items.get(message_id)

    @property
    def messages(self) -> list[MessagePublic]:
        """The open conversation's messages on screen, oldest first."""
        return [item.message for item in self._items.values()]

    def resendable(self) -> MessagePublic | None:
        """What Ctrl+R resends: the focused message (None if it cannot be resent) or, when no
        message has the focus, the latest that can be."""
        focused = self.screen.focused
        if isinstance(focused, MessageItem) and focused.message.id in self._items:
            return focused.message if can_resend(focused.message) else None
        return next((i.message for i in reversed(self._items.values()) if can_resend(i.message)), None)

    @property
    def media_messages(self) -> list[MessagePublic]:
        return [item.message for item in self._items.values() if item.message.media]

    def show_header(self, conversation: ConversationPublic | None) -> None:
        header = self.query_one("#thread-header", Static)
        header.update(header_content(conversation) if conversation else EMPTY_HINT)

    def show_sla(
        self,
        conversation: ConversationPublic | None,
        now: datetime,
        policies: Policies,
        warned: frozenset[tuple[str, str]] | set[tuple[str, str]] = frozenset(),
    ) -> None:
        """The countdown to the next deadline (amber from 80 %, red once late) and the badge."""
        label = self.query_one("#thread-sla", Static)
        shown = countdown(conversation, now, policies, warned) if conversation else None
        parts: list[Content] = []
        if conversation is not None and escalated(conversation):
            parts.append(Content.styled(" ▲ ESCALATED ", "bold"))
        if shown is not None:
            parts.append(Content(f" {shown.long} "))
        label.update(Content(" ").join(parts))
        label.display = bool(parts)
        level = shown.level if shown is not None else None
        for name in Level:
            label.set_class(level is name, f"-{name.value}")
        label.set_class(conversation is not None and escalated(conversation), "-escalated")

    async def open(self, conversation: ConversationPublic | None) -> None:
        """Switches to ``conversation`` (its messages follow with ``set_messages``)."""
        self.show_header(conversation)
        new_id = conversation.id if conversation else None
        self.customer_name = conversation.customer.name if conversation else None
        if new_id == self.conversation_id:
            return
        self.conversation_id = new_id
        self._items.clear()
        await self.scroller.remove_children()
        if conversation is not None:
            await self.scroller.mount(
                Static("Loading messages…", classes="thread-note placeholder", markup=False)
            )

    async def set_messages(
        self, conversation_id: str, messages: Iterable[MessagePublic], now: datetime, earlier: int = 0
    ) -> None:
        if conversation_id != self.conversation_id:
            return  # the agent moved on while these loaded
        # What arrived live while the page loaded stays, and a page older than a live status
        # update does not take the message back to an earlier state.
        live = {key: item.message for key, item in self._items.items()}
        loaded = [
            live[m.id]
            if m.id in live and not delivery_moves_forward(live[m.id].delivery_status, m.delivery_status)
            else m
            for m in messages
        ]
        known = {m.id for m in loaded}
        loaded += [message for key, message in live.items() if key not in known]
        loaded.sort(key=lambda m: (m.created_at, int(m.id) if m.id.isdigit() else 0))
        self._items.clear()
        await self.scroller.remove_children()
        widgets: list[Widget] = []
        if earlier:
            widgets.append(Static(f"{earlier} earlier messages not shown", classes="thread-note"))
        held: list[MessageItem] = []
        for message in loaded:
            item = MessageItem(message, now, self.tz, self.customer_name)
            self._items[message.id] = item
            if HELD in message.flags:
                held.append(item)
                continue
            if held:
                widgets.append(HeldBurst(held))
                held = []
            widgets.append(item)
        if held:
            widgets.append(HeldBurst(held))
        if not self._items:
            widgets.append(Static("No messages yet.", classes="thread-note placeholder"))
        await self.scroller.mount_all(widgets)
        self.scroller.anchor()  # stays at the newest message until the agent scrolls up

    async def add_or_update(self, message: MessagePublic, now: datetime) -> None:
        """A live message (or a new state of one) for the open conversation."""
        if message.conversation_id != self.conversation_id:
            return
        held = self._items.get(message.id)
        if held is not None:
            if delivery_moves_forward(held.message.delivery_status, message.delivery_status):
                held.update_message(message, now)
            return
        await self.scroller.query(".placeholder").remove()
        item = MessageItem(message, now, self.tz, self.customer_name)
        self._items[message.id] = item
        last = self.scroller.children[-1] if self.scroller.children else None
        if HELD in message.flags:
            if isinstance(last, HeldBurst):
                await last.add(item)
            else:
                await self.scroller.mount(HeldBurst([item]))
        else:
            await self.scroller.mount(item)
        if message.direction == "outbound":
            self.scroller.scroll_end(animate=False)  # one's own reply: always show it

    def update_media(self, media: MediaPublic, now: datetime) -> None:
        """A file of a message on screen was stored, failed, or expired."""
        item = self._items.get(media.message_id)
        if item is not None:
            item.update_media(media, now)
