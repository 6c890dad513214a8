"""Find a conversation by customer name, number (#123), text of its last message, team or agent.

The API has no text search over conversations yet, so the dialog loads the most recent ones the
agent may see (open and closed, ``SEARCH_LIMIT`` at most) once, then filters as the agent types.
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
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from max_server.client import ApiError
from max_server.schemas import ConversationPublic
from max_tui.formatting import channel_short, one_line

SEARCH_LIMIT = 500
Loader = Callable[[], Awaitable[Sequence[ConversationPublic]]]


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

    def __init__(self, load: Loader, tz: tzinfo) -> None:
        super().__init__()
        self.load = load
        self.tz = tz
        self.candidates: list[ConversationPublic] = []
        self.results: list[ConversationPublic] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog search"):
            yield Label("Search conversations", classes="dialog-title")
            yield Input(placeholder="name, #number, words of the last message…", id="search-input")
            yield OptionList(id="search-results", markup=False)
            yield Label("Loading…", id="search-status", classes="dialog-hint", markup=False)

    def on_mount(self) -> None:
        self.query_one("#search-input", Input).focus()
        self.fetch()

    @work(exclusive=True, group="search")
    async def fetch(self) -> None:
        status = self.query_one("#search-status", Label)
        try:
            self.candidates = list(await self.load())
        except ApiError as exc:
            status.update(f"Cannot search: {exc.message}")
            return
        self.refilter()

    @on(Input.Changed, "#search-input")
    def refilter(self) -> None:
        query = self.query_one("#search-input", Input).value
        self.results = matches(self.candidates, query)[:100]
        options = self.query_one("#search-results", OptionList)
        options.set_options(Option(result_label(c, self.tz), id=c.id) for c in self.results)
        if self.results:
            options.highlighted = 0
        shown = f"{len(self.results)} of {len(self.candidates)} recent conversations"
        self.query_one("#search-status", Label).update(shown + " · ⏎ open · esc cancel")

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
