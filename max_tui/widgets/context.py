"""The right-hand pane: the open conversation's facts, then its customer's context (seed §10).

The customer part is the context document (``GET /customers/{id}/context``): name, contact,
identities with their channel, links that can be undone, tags, open tickets, recent
transactions, and previous conversations (Enter opens one, read-only). The screen reloads it
when the conversation changes and when the customer is linked, unlinked or tagged (live
events). Ctrl+O collapses the pane; Ctrl+B moves the focus into it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

from max_server.schemas import ConversationPublic, CustomerContext, LinkPublic, PreviousConversation
from max_tui.formatting import channel_label, channel_short, clock_time, compact_duration, window_open
from max_tui.sla import Policies, countdown, escalated

NO_CONVERSATION = "Open a conversation to see its customer here."


def _when(moment: datetime | None, now: datetime, tz: tzinfo) -> str:
    if moment is None:
        return "—"
    relative = compact_duration(abs(moment - now))
    return f"{clock_time(moment, now, tz)} ({'in ' + relative if moment > now else relative + ' ago'})"


def _row(label: str, value: str | Content, style: str = "") -> Content:
    shown = value if isinstance(value, Content) else Content.styled(value, style)
    return Content.assemble((f"{label} ", "$text-muted"), shown)


def facts_content(conversation: ConversationPublic, now: datetime, tz: tzinfo, policies: Policies) -> Content:
    """The conversation itself: status, team, assignee, priority, SLA, WhatsApp's window."""
    assignee = (conversation.assignee.name or "someone") if conversation.assignee else "nobody"
    lines = [
        Content.styled(f"#{conversation.number} · {channel_label(conversation.channel)}", "bold"),
        _row("Status", conversation.status, "$text-warning" if conversation.status == "queued" else ""),
        _row("Team", conversation.team.name if conversation.team else "none"),
        _row("Assignee", assignee),
        _row("Priority", conversation.priority, "$text-error" if conversation.priority == "urgent" else ""),
        _row("Opened", _when(conversation.first_message_at, now, tz)),
    ]
    if escalated(conversation):
        lines.append(Content.styled("▲ ESCALATED", "$text-error bold"))
    shown = countdown(conversation, now, policies)
    if shown is not None:
        due = f"{shown.long}, {clock_time(shown.due, now, tz)}"
        lines.append(_row("SLA", due, shown.style))
    if conversation.channel == "whatsapp":
        is_open = window_open(conversation, now)
        text = ("open until " if is_open else "closed since ") + _when(
            conversation.window_expires_at, now, tz
        )
        lines.append(_row("24 h window", text, "$text-success" if is_open else "$text-error"))
    if conversation.closed_at is not None and conversation.status == "closed":
        lines.append(_row("Closed", f"{_when(conversation.closed_at, now, tz)}, {conversation.close_reason}"))
    return Content("\n").join(lines)


def _heading(text: str) -> Content:
    return Content.styled(text, "$text-primary bold")


def customer_content(document: CustomerContext) -> Content:
    customer = document.customer
    lines = [_heading("Customer"), Content.styled(customer.name or "Unknown customer", "bold")]
    lines += [Content(value) for value in (customer.email, customer.phone_e164) if value]
    for identity in document.customer.identities:
        shown = identity.external_id
        if identity.display_name and identity.display_name != customer.name:
            shown += f" ({identity.display_name})"
        lines.append(Content.assemble((f"{channel_label(identity.channel)} ", "$text-muted"), shown))
    return Content("\n").join(lines)


def links_content(
    links: Sequence[LinkPublic], customer_id: str, names: Mapping[str, str | None], now: datetime, tz: tzinfo
) -> Content | None:
    """The customers linked into this one (their identities are listed above)."""
    active = [link for link in links if link.unlinked_at is None and link.primary_customer_id == customer_id]
    if not active:
        return None
    lines = [_heading("Linked")]
    for link in active:
        name = names.get(link.secondary_customer_id) or f"customer {link.secondary_customer_id}"
        lines.append(Content.assemble(name, (f" · {clock_time(link.created_at, now, tz)}", "$text-muted")))
    return Content("\n").join(lines)


def tags_content(tags: Sequence[str]) -> Content:
    shown = (
        Content.styled(" · ".join(tags), "$text-accent") if tags else Content.styled("none", "$text-muted")
    )
    return Content.assemble(_heading("Tags"), ("  ^G edit", "$text-muted"), "\n", shown)


def tickets_content(document: CustomerContext) -> Content | None:
    if not document.open_tickets:
        return None
    lines = [_heading("Open tickets")]
    for ticket in document.open_tickets:
        lines.append(
            Content.assemble(
                (ticket.ticket_id, "bold"), f" {ticket.subject} ", (ticket.status, "$text-muted")
            )
        )
    return Content("\n").join(lines)


def money(amount: float, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def transactions_content(document: CustomerContext, now: datetime, tz: tzinfo) -> Content | None:
    if not document.recent_transactions:
        return None
    lines = [_heading("Recent transactions")]
    for item in document.recent_transactions[:5]:
        lines.append(
            Content.assemble(
                (item.transaction_id, "bold"),
                f" {money(item.amount, item.currency)} ",
                (f"{item.status} · {clock_time(item.occurred_at, now, tz)}", "$text-muted"),
            )
        )
    return Content("\n").join(lines)


def history_label(item: PreviousConversation, now: datetime, tz: tzinfo) -> Content:
    state = item.close_reason or item.status
    return Content.assemble(
        (f"#{item.number} ", "bold"),
        (f"{channel_short(item.channel)} {clock_time(item.created_at, now, tz)} ", "$text-muted"),
        state,
    )


class ContextPane(VerticalScroll):
    """Collapsible (``-collapsed``). ``show`` redraws the facts; ``show_customer`` the rest."""

    @dataclass
    class HistoryChosen(Message):
        conversation_id: str

    @dataclass
    class UndoLink(Message):
        link_id: str

    def __init__(self, tz: tzinfo, *, id: str | None = None) -> None:
        super().__init__(id=id, can_focus=False)
        self.tz = tz
        self.border_title = "Context"
        self.customer_id: str | None = None
        self.document: CustomerContext | None = None
        self.links: list[LinkPublic] = []

    def compose(self) -> ComposeResult:
        yield Static(Content.styled(NO_CONVERSATION, "$text-muted"), id="context-facts", markup=False)
        yield Static("", id="context-customer", classes="context-section", markup=False)
        yield Static("", id="context-links", classes="context-section", markup=False)
        yield Button("Undo link", id="context-undo", compact=True, variant="warning")
        yield Static("", id="context-tags", classes="context-section", markup=False)
        yield Static("", id="context-tickets", classes="context-section", markup=False)
        yield Static("", id="context-transactions", classes="context-section", markup=False)
        yield Static("", id="context-history-title", classes="context-section", markup=False)
        yield OptionList(id="context-history", markup=False, compact=True)

    def on_mount(self) -> None:
        self.show_customer(None, [], {}, None, None)

    def show(
        self, conversation: ConversationPublic | None, now: datetime, policies: Policies | None = None
    ) -> None:
        facts = self.query_one("#context-facts", Static)
        if conversation is None:
            facts.update(Content.styled(NO_CONVERSATION, "$text-muted"))
            self.show_customer(None, [], {}, None, None)
        else:
            facts.update(facts_content(conversation, now, self.tz, policies or {}))

    def show_loading(self) -> None:
        self.query_one("#context-customer", Static).update(
            Content.styled("Loading the customer…", "$text-muted")
        )

    def show_error(self, text: str) -> None:
        self.query_one("#context-customer", Static).update(Content.styled(text, "$text-error"))

    def show_customer(
        self,
        document: CustomerContext | None,
        links: Sequence[LinkPublic],
        names: Mapping[str, str | None],
        now: datetime | None,
        customer_id: str | None,
    ) -> None:
        self.document, self.links, self.customer_id = document, list(links), customer_id
        sections: dict[str, Content | None] = dict.fromkeys(
            ("customer", "links", "tags", "tickets", "transactions", "history-title")
        )
        history = self.query_one("#context-history", OptionList)
        if document is not None and now is not None and customer_id is not None:
            sections["customer"] = customer_content(document)
            sections["links"] = links_content(links, customer_id, names, now, self.tz)
            sections["tags"] = tags_content(document.tags)
            sections["tickets"] = tickets_content(document)
            sections["transactions"] = transactions_content(document, now, self.tz)
            total = document.previous_conversations_total
            sections["history-title"] = Content.assemble(
                _heading("History"), (f"  {total} earlier" if total else "  none", "$text-muted")
            )
            history.set_options(
                Option(history_label(item, now, self.tz), id=item.id)
                for item in document.previous_conversations
            )
            if history.option_count:
                history.highlighted = 0
        else:
            history.clear_options()
        for name, content in sections.items():
            widget = self.query_one(f"#context-{name}", Static)
            widget.update(content or "")
            widget.display = content is not None
        history.display = history.option_count > 0
        self.query_one("#context-undo", Button).display = self.undoable is not None

    @property
    def undoable(self) -> LinkPublic | None:
        """The newest link into this customer that is still in force (undo goes newest first)."""
        for link in self.links:
            if link.unlinked_at is None and link.primary_customer_id == self.customer_id:
                return link
        return None

    def focus_inside(self) -> None:
        for widget in (
            self.query_one("#context-history", OptionList),
            self.query_one("#context-undo", Button),
        ):
            if widget.display:
                widget.focus()
                return

    @on(OptionList.OptionSelected, "#context-history")
    def _history(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.HistoryChosen(event.option.id))

    @on(Button.Pressed, "#context-undo")
    def _undo(self, event: Button.Pressed) -> None:
        event.stop()
        link = self.undoable
        if link is not None:
            self.post_message(self.UndoLink(link.link_id))
