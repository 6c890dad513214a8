"""The queue: tabs Mine / Team queue / All open over one list of conversations.

Each row is two lines: the customer's name, a ``HELD`` badge when the customer rate limit holds
it (supervisors only; its preview stays collapsed), an ``ESC`` badge when it was escalated,
priority and number; then the channel, how long the customer has been waiting, the countdown to the next SLA
deadline (amber from 80 %, ``late`` in red once breached) and the last message. Enter opens the
highlighted conversation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList, Tab, Tabs
from textual.widgets.option_list import Option

from max_server.schemas import ConversationPublic
from max_tui.formatting import channel_short, one_line, waiting_label
from max_tui.sla import Countdown, escalated
from max_tui.state import TAB_TITLES
from max_tui.state import Tab as QueueTab

PRIORITY_STYLES = {
    "urgent": "$text-error bold",
    "high": "$text-warning bold",
    "normal": "$text-muted",
    "low": "$text-muted",
}


def tab_label(tab: QueueTab, count: int | None) -> str:
    """A label whose width never changes: the tab underline is sized when the label is first
    laid out, and follows later relabels unreliably."""
    shown = "" if count is None else (str(count) if count < 1000 else "999+")
    return f"{TAB_TITLES[tab]} {shown:<4}"


SlaOf = Callable[[ConversationPublic, datetime], Countdown | None]


def row_prompt(
    conversation: ConversationPublic,
    now: datetime,
    width: int,
    opened: bool,
    sla: Countdown | None = None,
) -> Content:
    """The two lines of one queue row, fitted to ``width`` cells."""
    width = max(width, 16)
    marker = ("▌", "$text-accent") if opened else " "
    right = Content.assemble(
        ("HELD ", "$text-warning bold") if conversation.rate_limited else "",
        ("ESC ", "$text-error bold") if escalated(conversation) else "",
        (conversation.priority, PRIORITY_STYLES.get(conversation.priority, "")),
        (f" #{conversation.number}", "$text-muted"),
    )
    name_width = max(width - 1 - right.cell_length - 1, 4)
    name = Content.styled(conversation.customer.name or "Unknown customer", "bold").truncate(
        name_width, ellipsis=True, pad=True
    )
    waiting = waiting_label(conversation, now)
    head = Content.assemble(" ", (channel_short(conversation.channel), "$text-muted"), " ")
    if waiting:
        head = Content.assemble(head, ("⏱" + waiting, "$text-warning"), " ")
    if sla is not None:
        head = Content.assemble(head, (sla.short, sla.style), " ")
    preview_width = max(width - head.cell_length, 1)
    if conversation.rate_limited:  # collapsed: the customer is over the rate limit
        preview = Content.styled(one_line("held by the rate limit", preview_width), "$text-muted italic")
    else:
        preview = Content(one_line(conversation.last_message_preview or conversation.subject, preview_width))
    return Content.assemble(marker, name, " ", right, "\n", head, preview)


class QueuePane(Vertical):
    """Tabs over an option list whose option ids are conversation ids."""

    @dataclass
    class Opened(Message):
        """The agent chose a conversation (Enter on a row)."""

        conversation_id: str

    @dataclass
    class TabChanged(Message):
        tab: QueueTab

    def __init__(self, tabs: tuple[QueueTab, ...], active: QueueTab, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.tab_ids = tabs
        self.active_tab = active
        self.opened_id: str | None = None
        self.sla_of: SlaOf = lambda conversation, now: None  # the screen knows the policies
        self._rows: list[ConversationPublic] = []
        self._now: datetime | None = None

    def compose(self) -> ComposeResult:
        yield Tabs(
            *(Tab(tab_label(t, None), id=f"tab-{t.value}") for t in self.tab_ids),
            active=f"tab-{self.active_tab.value}",
            id="queue-tabs",
        )
        yield OptionList(id="queue-list", markup=False)

    @property
    def option_list(self) -> OptionList:
        return self.query_one("#queue-list", OptionList)

    @property
    def row_ids(self) -> list[str]:
        return [c.id for c in self._rows]

    def show(self, rows: list[ConversationPublic], counts: dict[QueueTab, int], now: datetime) -> None:
        """Redraws the active tab's rows, keeping the highlighted conversation highlighted."""
        self._rows, self._now = rows, now
        tabs = self.query_one(Tabs)
        for tab in self.tab_ids:
            label = tab_label(tab, counts.get(tab, 0))
            widget = tabs.query_one(f"#tab-{tab.value}", Tab)
            if str(widget.label) != label:
                widget.label = label
        self._redraw()

    def _redraw(self) -> None:
        if self._now is None:
            return
        option_list = self.option_list
        keep = option_list.highlighted_option.id if option_list.highlighted_option else self.opened_id
        width = option_list.scrollable_content_region.width or option_list.size.width or 30
        scrolled = option_list.scroll_y
        option_list.set_options(
            Option(
                row_prompt(c, self._now, width - 1, c.id == self.opened_id, self.sla_of(c, self._now)),
                id=c.id,
            )
            for c in self._rows
        )
        if not self._rows:
            return
        ids = self.row_ids
        option_list.scroll_to(y=scrolled, animate=False, immediate=True)
        option_list.highlighted = ids.index(keep) if keep in ids else 0

    def on_resize(self) -> None:
        self._redraw()

    def mark_opened(self, conversation_id: str | None) -> None:
        self.opened_id = conversation_id
        if conversation_id in self.row_ids:
            self.option_list.highlighted = self.row_ids.index(conversation_id)
        self._redraw()

    def neighbour(self, step: int) -> str | None:
        """The conversation ``step`` rows from the opened (or highlighted) one, wrapping."""
        ids = self.row_ids
        if not ids:
            return None
        current = self.opened_id if self.opened_id in ids else None
        if current is None:
            highlighted = self.option_list.highlighted
            return ids[highlighted if highlighted is not None else 0]
        return ids[(ids.index(current) + step) % len(ids)]

    def select_tab(self, tab: QueueTab) -> None:
        self.query_one(Tabs).active = f"tab-{tab.value}"

    def cycle_tab(self) -> None:
        shown = QueueTab(self.query_one(Tabs).active.removeprefix("tab-"))  # current even mid-switch
        index = self.tab_ids.index(shown)
        self.select_tab(self.tab_ids[(index + 1) % len(self.tab_ids)])

    @on(Tabs.TabActivated)
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        if event.tab.id is None:
            return
        tab = QueueTab(event.tab.id.removeprefix("tab-"))
        if tab != self.active_tab:
            self.active_tab = tab
            self.post_message(self.TabChanged(tab))

    @on(OptionList.OptionSelected, "#queue-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.Opened(event.option.id))
