"""Link identities (seed §2's flow): find the other customer record of the same person, see what
the link will move, confirm.

Suggestions come first (customers sharing a phone or an email, with the reason), then what the
search finds (email, phone in any written form, name, or a customer id). Highlighting one shows
a preview from its context document: the identities, conversations, transactions and tickets
that will move into the open conversation's customer, the tags it will gain and the empty
fields it will fill. Enter on a candidate, then on "Link", dismisses with its id; the screen
links them. Undo stays possible from the sidebar.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from max_server.client import ApiError
from max_server.schemas import CustomerContext, CustomerPublic, LinkSuggestion, SuggestionReason
from max_tui.api import ConsoleApi
from max_tui.formatting import channel_label

SEARCH_DELAY_S = 0.25
PREVIEW_LIMIT = 100


def reason_text(reasons: list[SuggestionReason]) -> str:
    return ", ".join(f"same {r.kind} {r.value}" for r in reasons)


def candidate_label(customer: CustomerPublic, reasons: list[SuggestionReason] | None) -> Content:
    contact = (
        customer.email or customer.phone_e164 or ", ".join(i.external_id for i in customer.identities[:1])
    )
    parts: list[str | tuple[str, str]] = [
        ("★ " if reasons else "  ", "$text-accent"),
        (customer.name or "Unknown customer", "bold"),
        (f" #{customer.id}", "$text-muted"),
    ]
    if contact:
        parts.append((f" · {contact}", ""))
    if reasons:
        parts.append((f" · {reason_text(reasons)}", "$text-accent"))
    return Content.assemble(*parts)


def preview_content(primary: CustomerPublic, secondary: CustomerPublic, document: CustomerContext) -> Content:
    """What linking ``secondary`` into ``primary`` will do (the server's rules: the primary wins
    conflicts; its empty fields are filled; the secondary's tags it lacks are added)."""
    name = secondary.name or f"customer #{secondary.id}"
    lines = [
        Content.assemble((name, "bold"), " will be linked into ", (primary.name or f"#{primary.id}", "bold")),
        Content.styled("Moves:", "$text-muted"),
    ]
    for identity in document.customer.identities:
        lines.append(Content(f"  {channel_label(identity.channel)} {identity.external_id}"))
    total = document.previous_conversations_total
    transactions = len(document.recent_transactions)
    counted = f"{transactions}+" if transactions >= PREVIEW_LIMIT else str(transactions)
    lines.append(Content(f"  {total} conversation(s), {counted} transaction(s), its tickets"))
    tags = [t for t in document.tags if t not in primary.tags]
    if tags:
        lines.append(Content.assemble(("Adds tags: ", "$text-muted"), ", ".join(tags)))
    fills = [
        f"{label} {value}"
        for label, mine, theirs in (
            ("name", primary.name, secondary.name),
            ("email", primary.email, secondary.email),
            ("phone", primary.phone_e164, secondary.phone_e164),
        )
        if not mine and (value := theirs)
    ]
    if fills:
        lines.append(Content.assemble(("Fills: ", "$text-muted"), ", ".join(fills)))
    lines.append(Content.styled(f"{name} becomes inactive. Undo from the sidebar.", "$text-muted"))
    return Content("\n").join(lines)


class LinkDialog(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="link.cancel"),
        Binding("down", "move(1)", "Down", show=False, id="link.down"),
        Binding("up", "move(-1)", "Up", show=False, id="link.up"),
    ]
    AUTO_FOCUS = "#link-search"

    def __init__(self, api: ConsoleApi, primary: CustomerPublic) -> None:
        super().__init__()
        self.api = api
        self.primary = primary
        self.suggestions: list[LinkSuggestion] = []
        self.found: list[CustomerPublic] = []
        self.candidates: dict[str, CustomerPublic] = {}
        self.requested: str | None = None  # the candidate whose preview is loading or shown
        self.previewed: str | None = None  # the candidate the preview panel shows
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog link"):
            yield Label(
                f"Link another record into {self.primary.name or '#' + self.primary.id}",
                classes="dialog-title",
                markup=False,
            )
            yield Input(placeholder="Search: email, phone or customer id", id="link-search", compact=True)
            yield OptionList(id="link-candidates", markup=False)
            yield Static("", id="link-preview", markup=False)
            yield Button("Link (⏎)", id="link-confirm", variant="primary", disabled=True)
            yield Label("↑↓ choose · ⏎ preview, then link · esc cancel", classes="dialog-hint", markup=False)

    def on_mount(self) -> None:
        self.load_suggestions()

    @work(exclusive=True, group="link-suggestions", exit_on_error=False)
    async def load_suggestions(self) -> None:
        try:
            self.suggestions = await self.api.link_suggestions(self.primary.id)
        except ApiError as exc:
            self.query_one("#link-preview", Static).update(Content.styled(exc.message, "$text-error"))
            return
        self._show()

    @on(Input.Changed, "#link-search")
    def _typed(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(SEARCH_DELAY_S, self._search_now)

    def _search_now(self) -> None:
        self.search(self.query_one("#link-search", Input).value.strip())

    @work(exclusive=True, group="link-search", exit_on_error=False)
    async def search(self, query: str) -> None:
        if not query:
            self.found = []
            self._show()
            return
        try:
            found = await self.api.search_customers(query)
            if query.isdigit() and all(c.id != query for c in found):
                try:
                    found.insert(0, await self.api.customer(query))
                except ApiError as exc:
                    if exc.status != 404:
                        raise
        except ApiError as exc:
            self.query_one("#link-preview", Static).update(Content.styled(exc.message, "$text-error"))
            return
        self.found = found
        self._show()

    def _show(self) -> None:
        options = self.query_one("#link-candidates", OptionList)
        keep = options.highlighted_option.id if options.highlighted_option else None
        listed: list[Option] = []
        self.candidates = {}
        for suggestion in self.suggestions:
            customer = suggestion.customer
            if customer.id != self.primary.id and customer.id not in self.candidates:
                self.candidates[customer.id] = customer
                listed.append(Option(candidate_label(customer, suggestion.reasons), id=customer.id))
        for customer in self.found:
            usable = customer.is_active and customer.erased_at is None
            if usable and customer.id != self.primary.id and customer.id not in self.candidates:
                self.candidates[customer.id] = customer
                listed.append(Option(candidate_label(customer, None), id=customer.id))
        options.set_options(listed)
        ids = list(self.candidates)
        if ids:
            options.highlighted = ids.index(keep) if keep in ids else 0
            return
        self.requested = self.previewed = None
        self.query_one("#link-confirm", Button).disabled = True
        if not self.suggestions:
            self.query_one("#link-preview", Static).update(
                Content.styled("No suggestions: search by email, phone or id.", "$text-muted")
            )

    def action_move(self, step: int) -> None:
        options = self.query_one("#link-candidates", OptionList)
        if options.option_count:
            current = options.highlighted if options.highlighted is not None else -step
            options.highlighted = max(0, min(options.option_count - 1, current + step))

    @property
    def highlighted_id(self) -> str | None:
        option = self.query_one("#link-candidates", OptionList).highlighted_option
        return option.id if option is not None else None

    @on(OptionList.OptionHighlighted, "#link-candidates")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        wanted = event.option.id
        if wanted is None or wanted == self.requested:
            return  # its preview is on screen or on its way
        # Whatever was shown or loading is for another candidate now (A, B, back to A while B's
        # preview still loads): nothing may be linked until this one's preview is in.
        self.requested, self.previewed = wanted, None
        self.query_one("#link-confirm", Button).disabled = True
        self.preview(wanted)

    @work(exclusive=True, group="link-preview", exit_on_error=False)
    async def preview(self, customer_id: str) -> None:
        panel = self.query_one("#link-preview", Static)
        panel.update(Content.styled("Loading what will move…", "$text-muted"))
        try:
            document = await self.api.customer_context(customer_id, limit=PREVIEW_LIMIT)
        except ApiError as exc:
            if self.requested == customer_id:
                self.requested = None  # highlighting it again retries
                panel.update(Content.styled(f"Cannot preview: {exc.message}", "$text-error"))
            return
        if customer_id != self.requested or customer_id != self.highlighted_id:
            return  # a late answer for a candidate the agent has left
        self.previewed = customer_id
        panel.update(preview_content(self.primary, self.candidates[customer_id], document))
        self.query_one("#link-confirm", Button).disabled = False

    @on(Input.Submitted, "#link-search")
    @on(OptionList.OptionSelected, "#link-candidates")
    def _chosen(self, event: Input.Submitted | OptionList.OptionSelected) -> None:
        event.stop()
        button = self.query_one("#link-confirm", Button)
        if not button.disabled:
            button.focus()
        else:
            self.query_one("#link-candidates", OptionList).focus()

    @on(Button.Pressed, "#link-confirm")
    def _confirm(self) -> None:
        """Links only what the agent sees: the previewed candidate, still highlighted."""
        if self.previewed is not None and self.previewed == self.highlighted_id:
            self.dismiss(self.previewed)

    def action_cancel(self) -> None:
        self.dismiss(None)
