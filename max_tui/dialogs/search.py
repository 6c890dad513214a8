"""Find a conversation (Ctrl+F): the server searches every conversation the agent may see, open or
closed (customer name, phone or WhatsApp number, email, ``#number``, subject, message text).

Each keystroke first filters what the console already holds (the open queues) so something shows
at once; a quarter of a second after the agent stops typing, the server's answer replaces it (one
request at a time: a newer query cancels the one in flight).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import tzinfo
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from max_server.client import ApiError
from max_server.schemas import ConversationPublic
from max_tui.formatting import channel_short, one_line

SEARCH_DELAY_S = 0.25
SHOWN = 100
Searcher = Callable[[str], Awaitable[tuple[Sequence[ConversationPublic], bool]]]


def haystack(conversation: ConversationPublic) -> str:
    parts = [
        conversation.customer.name or "",
        f"#{conversation.number}",
        conversation.last_message_preview or "",
        conversation.subject or "",
        conversation.team.name if conversation.team else "",
        conversation.team.slug if conversation.team else "",
        (conversation.assignee.name or "") if conversation.assignee else "",
        conversation.status,
        conversation.channel,
    ]
    return " ".join(parts).casefold()


def matches(conversations: Sequence[ConversationPublic], query: str) -> list[ConversationPublic]:
    """Every word of ``query`` must appear; an exact number (``123`` or ``#123``) comes first."""
    words = query.casefold().split()
    if not words:
        return list(conversations)
    number = query.strip().lstrip("#")
    found = [c for c in conversations if all(w in haystack(c) for w in words)]
    exact = [c for c in conversations if number.isdigit() and str(c.number) == number]
    return exact + [c for c in found if c not in exact]


def number_first(conversations: Sequence[ConversationPublic], query: str) -> list[ConversationPublic]:
    """The server's results (newest first), with the conversation whose number was typed first."""
    number = query.strip().lstrip("#")
    exact = [c for c in conversations if number.isdigit() and str(c.number) == number]
    return exact + [c for c in conversations if c not in exact]


def result_label(conversation: ConversationPublic, tz: tzinfo, width: int = 70) -> str:
    when = (conversation.last_message_at or conversation.created_at).astimezone(tz)
    head = (
        f"#{conversation.number} {conversation.customer.name or 'Unknown'} · "
        f"{channel_short(conversation.channel)} · {conversation.status} · {when:%Y-%m-%d %H:%M}"
    )
    return head + "\n  " + one_line(conversation.last_message_preview or conversation.subject, width)


class SearchDialog(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="search.cancel"),
        Binding("down", "move(1)", "Next result", show=False, id="search.down"),
        Binding("up", "move(-1)", "Previous result", show=False, id="search.up"),
    ]

    def __init__(self, search: Searcher, held: Sequence[ConversationPublic], tz: tzinfo) -> None:
        super().__init__()
        self.search_server = search
        self.held = list(held)  # what the console already has (open queues): shown at once
        self.tz = tz
        self.results: list[ConversationPublic] = []
        self.searched: str | None = None  # the query the server answered last
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog search"):
            yield Label("Search conversations", classes="dialog-title")
            yield Input(placeholder="name, phone, #number, words of a message…", id="search-input")
            yield OptionList(id="search-results", markup=False)
            yield Label("Searching…", id="search-status", classes="dialog-hint", markup=False)

    def on_mount(self) -> None:
        self.query_one("#search-input", Input).focus()
        self.search("")  # the most recent conversations

    @on(Input.Changed, "#search-input")
    def _typed(self, event: Input.Changed) -> None:
        query = event.value.strip()
        self.show(matches(self.held, query)[:SHOWN], "searching all conversations…")
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(SEARCH_DELAY_S, lambda: self.search(query))

    @work(exclusive=True, group="search", exit_on_error=False)
    async def search(self, query: str) -> None:
        try:
            found, more = await self.search_server(query)
        except ApiError as exc:
            self.query_one("#search-status", Label).update(f"Cannot search: {exc.message}")
            return
        if query != self.query_one("#search-input", Input).value.strip():
            return  # the agent typed on: the answer for the newer query is coming
        self.searched = query
        count = f"{len(found)}+" if more else str(len(found))
        what = "recent conversations" if not query else f"found ({count})" if found else "nothing found"
        self.show(number_first(found, query), what)

    def show(self, results: Sequence[ConversationPublic], status: str) -> None:
        options = self.query_one("#search-results", OptionList)
        keep = options.highlighted_option.id if options.highlighted_option else None
        self.results = list(results)
        options.set_options(Option(result_label(c, self.tz), id=c.id) for c in self.results)
        ids = [c.id for c in self.results]
        if ids:
            options.highlighted = ids.index(keep) if keep in ids else 0
        self.query_one("#search-status", Label).update(f"{status} · ⏎ open · esc cancel")

    def action_move(self, step: int) -> None:
        options = self.query_one("#search-results", OptionList)
        if options.option_count:
            current = options.highlighted if options.highlighted is not None else -step
            options.highlighted = max(0, min(options.option_count - 1, current + step))

    @on(Input.Submitted, "#search-input")
    def _submit(self) -> None:
        options = self.query_one("#search-results", OptionList)
        chosen = options.highlighted_option
        if chosen is not None:
            self.dismiss(chosen.id)

    @on(OptionList.OptionSelected, "#search-results")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
