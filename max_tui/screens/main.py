"""The agent's screen: queue on the left, the thread and composer in the centre, the conversation's
facts and its customer's context on the right.

Live events arrive through ``apply_event`` (``MaxApp`` forwards them from the websocket worker);
every REST call runs in a worker, so the screen never waits on the network. The features of part
2 (canned responses, the customer sidebar and links, templates, media, notifications) live in
``max_tui.flows``, one module each; this screen routes keys and events to them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import TextArea

from max_server.client import ApiError
from max_server.schemas import ConversationPublic, MessagePublic
from max_tui.actions import VERBS
from max_tui.flows.canned import CannedFlow
from max_tui.flows.customer import CustomerFlow
from max_tui.flows.events import EventsFlow
from max_tui.flows.media import MediaFlow
from max_tui.flows.notifications import NotificationsFlow
from max_tui.flows.reply import ReplyFlow
from max_tui.flows.sla import SlaFlow
from max_tui.flows.template import TemplateFlow
from max_tui.formatting import window_open
from max_tui.keys import FOOTER_RANK, MAIN_BINDINGS
from max_tui.session import ConsoleContext
from max_tui.widgets.canned_dropdown import CannedDropdown
from max_tui.widgets.composer import CONVERSATION_CLOSED, WINDOW_CLOSED, Composer
from max_tui.widgets.context import ContextPane
from max_tui.widgets.footer import FittedFooter
from max_tui.widgets.message import MessageItem
from max_tui.widgets.queue import QueuePane
from max_tui.widgets.thread import ThreadView
from max_tui.widgets.top_bar import TopBar

TICK_SECONDS = 30
SLA_TICK_SECONDS = 5  # the open conversation's countdown (cheap); the queue redraws every TICK
CONVERSATION_ACTIONS = frozenset(VERBS)
WIDE_ENOUGH_FOR_CONTEXT = 110  # columns; narrower terminals start with the context pane collapsed


class MainScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = list(MAIN_BINDINGS)
    AUTO_FOCUS = "#queue-list"

    def __init__(self, ctx: ConsoleContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.current_id: str | None = None
        self.context_collapsed: bool | None = None  # None: decided by the terminal's width
        self._queue_dirty = False
        self.loads = 0  # completed queue loads (first load, resyncs)
        self.acting_on: set[str] = set()  # conversations changing by our own hand (no toast)
        self.events = EventsFlow(self)
        self.reply = ReplyFlow(self)
        self.sla = SlaFlow(self)
        self.canned = CannedFlow(self)
        self.customer = CustomerFlow(self)
        self.templates = TemplateFlow(self)
        self.media = MediaFlow(self)
        self.notifications = NotificationsFlow(self)

    # Layout ------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        viewer = self.ctx.viewer
        yield TopBar(f"{viewer.name} ({viewer.role})", self.ctx.server, id="top-bar")
        with Horizontal(id="body"):
            yield QueuePane(viewer.tabs, viewer.first_tab, id="queue")
            with Vertical(id="centre"):
                yield ThreadView(self.ctx.tz, id="thread")
                yield Composer(id="composer")
            yield ContextPane(self.ctx.tz, id="context")
        yield CannedDropdown(self.ctx.canned, id="canned-dropdown")
        yield FittedFooter(FOOTER_RANK, compact=True)

    def on_mount(self) -> None:
        self.queue.sla_of = self.sla.countdown
        self.dropdown.attach(self.composer, lambda: self.composer.conversation_id)
        self.composer.key_hook = self.dropdown.take_key
        self.refresh_queue()
        self.query_one(ContextPane).show(None, self.ctx.now())
        self.set_interval(TICK_SECONDS, self.tick)
        self.set_interval(SLA_TICK_SECONDS, self.sla.show)

    def tick(self) -> None:
        """Time moves on: waiting times, deadlines, and WhatsApp's window (it can close while
        the agent is reading)."""
        self.refresh_queue()
        self.show_current()

    def on_resize(self) -> None:
        self.arrange_panes()

    def arrange_panes(self) -> None:
        """Wide terminals show the sidebar; narrow ones start without it, and when the agent
        shows it there (Ctrl+O) it takes the queue's place (Esc brings the queue back)."""
        narrow = self.size.width < WIDE_ENOUGH_FOR_CONTEXT
        shown = not narrow if self.context_collapsed is None else not self.context_collapsed
        self.query_one(ContextPane).set_class(not shown, "-collapsed")
        self.queue.set_class(narrow and shown, "-collapsed")

    @property
    def queue(self) -> QueuePane:
        return self.query_one(QueuePane)

    @property
    def composer(self) -> Composer:
        return self.query_one(Composer)

    @property
    def thread(self) -> ThreadView:
        return self.query_one("#thread", ThreadView)

    @property
    def dropdown(self) -> CannedDropdown:
        return self.query_one(CannedDropdown)

    @property
    def current(self) -> ConversationPublic | None:
        return self.ctx.store.get(self.current_id) if self.current_id else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The footer offers what fits the open conversation: hidden (False) when it cannot apply,
        dimmed (None) while no conversation is open."""
        if action == "sla":
            return self.ctx.viewer.role in ("supervisor", "admin")  # the report needs that role
        if action == "resend":  # shown only while the thread has something to resend
            return self.current is not None and self.thread.resendable() is not None
        if action == "template":
            conversation = self.current
            if conversation is None:
                return None
            return conversation.channel == "whatsapp" and conversation.status != "closed"
        if action not in CONVERSATION_ACTIONS:
            return True
        conversation = self.current
        if conversation is None:
            return None
        if conversation.status == "closed":
            return action == "reopen"
        mine = conversation.assignee is not None and conversation.assignee.id == self.ctx.viewer.user_id
        return {"reopen": False, "take": not mine, "unassign": conversation.assignee is not None}.get(
            action, True
        )

    def set_live_state(self, state: str, detail: str = "") -> None:
        self.query_one(TopBar).set_live_state(state, detail)

    # Data in -----------------------------------------------------------------------------------
    @work(exclusive=True, group="reload", exit_on_error=False)
    async def reload(self) -> None:
        """Loads the queues (and the open thread) afresh: at start and when the stream resyncs."""
        try:
            rows = await self.ctx.api.queues(everything=self.ctx.viewer.supervises)
            current = await self.ctx.api.conversation(self.current_id) if self.current_id else None
        except ApiError as exc:
            self.notify(f"Could not load the queue: {exc.message}", severity="error")
            return
        self.ctx.store.replace_all(rows)
        if current is not None:
            self.ctx.store.upsert(current)
        self.sla.load_policies()
        self.canned.refresh(force=True)
        self.notifications.refresh()
        self.loads += 1
        self.refresh_queue()
        if current is not None:
            self.show_current()
            self.load_thread(current.id)
            self.customer.load(current, force=True)

    def refresh_queue(self) -> None:
        """Redraws the queue once per batch of changes (events can come in bursts)."""
        if not self._queue_dirty:
            self._queue_dirty = True
            self.call_after_refresh(self._redraw_queue)

    def _redraw_queue(self) -> None:
        self._queue_dirty = False
        store, queue = self.ctx.store, self.queue
        queue.show(store.rows(queue.active_tab), store.counts(), self.ctx.now())

    async def apply_event(self, envelope: dict[str, Any]) -> None:
        await self.events.apply(envelope)

    # Opening a conversation --------------------------------------------------------------------
    @on(QueuePane.Opened)
    async def _opened(self, event: QueuePane.Opened) -> None:
        await self.open_conversation(event.conversation_id, focus_composer=True)

    @on(QueuePane.TabChanged)
    def _tab_changed(self) -> None:
        self.refresh_queue()

    async def open_conversation(self, conversation_id: str, focus_composer: bool = False) -> None:
        self.save_draft()
        conversation = self.ctx.store.get(conversation_id)
        if conversation is None:
            self.fetch_and_open(conversation_id)
            return
        self.current_id = conversation_id
        self.refresh_bindings()
        self.queue.mark_opened(conversation_id)
        await self.thread.open(conversation)
        self.composer.switch_to(
            conversation_id, self.ctx.drafts.get(conversation_id), self.blocked(conversation)
        )
        self.query_one(ContextPane).show(conversation, self.ctx.now(), self.ctx.policies)
        self.sla.show()
        self.customer.load(conversation)
        if focus_composer:
            self.composer.focus()
        self.load_thread(conversation_id)

    @work(group="fetch", exit_on_error=False)
    async def fetch_and_open(self, conversation_id: str) -> None:
        try:
            conversation = await self.ctx.api.conversation(conversation_id)
        except ApiError as exc:
            self.notify(f"Cannot open that conversation: {exc.message}", severity="error")
            return
        self.ctx.store.upsert(conversation)
        await self.open_conversation(conversation_id, focus_composer=True)

    @work(exclusive=True, group="thread", exit_on_error=False)
    async def load_thread(self, conversation_id: str) -> None:
        try:
            messages, earlier = await self.ctx.api.messages(conversation_id)
        except ApiError as exc:
            self.notify(f"Could not load the messages: {exc.message}", severity="error")
            return
        await self.thread.set_messages(conversation_id, messages, self.ctx.now(), earlier)
        self.refresh_bindings()  # Resend applies when the thread has a failed send

    def show_current(self) -> None:
        conversation = self.current
        self.refresh_bindings()
        if conversation is None:
            return
        self.thread.show_header(conversation)
        self.sla.show()
        self.query_one(ContextPane).show(conversation, self.ctx.now(), self.ctx.policies)
        self.composer.set_blocked(self.blocked(conversation))
        self.customer.load(conversation)  # a link can move the conversation to another customer

    def blocked(self, conversation: ConversationPublic) -> str | None:
        if conversation.status == "closed":
            return CONVERSATION_CLOSED
        return None if window_open(conversation, self.ctx.now()) else WINDOW_CLOSED

    # Composer ----------------------------------------------------------------------------------
    @on(TextArea.Changed, "#composer")
    def _draft_changed(self) -> None:
        self.save_draft()

    def save_draft(self) -> None:
        composer = self.composer
        if composer.conversation_id is not None:
            self.ctx.drafts.set(composer.conversation_id, composer.text)
            if self.ctx.drafts.dirty:
                self.ctx.drafts_changed()

    @on(Composer.Submitted)
    def _submitted(self, event: Composer.Submitted) -> None:
        self.reply.submitted(event.conversation_id, event.text)

    async def show_new_message(self, message: MessagePublic) -> None:
        """One of ours (a reply, a template): into the queue's preview and the thread."""
        if self.ctx.store.note_message(message):
            self.refresh_queue()
        await self.thread.add_or_update(message, self.ctx.now())
        self.refresh_bindings()

    @on(CannedDropdown.Chosen)
    def _canned_chosen(self, event: CannedDropdown.Chosen) -> None:
        self.canned.chosen(event)

    @on(CannedDropdown.Opened)
    def _canned_opened(self) -> None:
        self.canned.refresh()

    # Sidebar, media ----------------------------------------------------------------------------
    @on(ContextPane.HistoryChosen)
    def _history(self, event: ContextPane.HistoryChosen) -> None:
        self.customer.open_history(event.conversation_id)

    @on(ContextPane.UndoLink)
    def _undo_link(self, event: ContextPane.UndoLink) -> None:
        self.customer.undo(event.link_id)

    @on(MessageItem.MediaOpened)
    def _media_opened(self, event: MessageItem.MediaOpened) -> None:
        self.media.open_message(event.message)

    # Actions -----------------------------------------------------------------------------------
    def need_current(self) -> ConversationPublic | None:
        conversation = self.current
        if conversation is None:
            self.notify("Open a conversation first (Enter on a queue row).", severity="warning")
        return conversation

    def conversation_changed(self, changed: ConversationPublic) -> None:
        """An action's answer: what the server says the conversation is now."""
        self.ctx.store.upsert(changed)
        self.refresh_queue()
        if changed.id == self.current_id:
            self.show_current()

    def _act(self, verb: str) -> None:
        self.reply.act(verb)

    def action_take(self) -> None:
        self._act("take")

    def action_unassign(self) -> None:
        self._act("unassign")

    def action_transfer(self) -> None:
        self._act("transfer")

    def action_priority(self) -> None:
        self._act("priority")

    def action_close(self) -> None:
        self._act("close")

    def action_reopen(self) -> None:
        self._act("reopen")

    def action_search(self) -> None:
        self.reply.search()

    def action_resend(self) -> None:
        self.reply.resend()

    async def action_next(self) -> None:
        await self._step(1)

    async def action_previous(self) -> None:
        await self._step(-1)

    async def _step(self, step: int) -> None:
        target = self.queue.neighbour(step)
        if target is not None and target != self.current_id:
            await self.open_conversation(target, focus_composer=self.composer.has_focus)

    def action_cycle_tab(self) -> None:
        self.queue.cycle_tab()

    def action_toggle_context(self) -> None:
        self.context_collapsed = not self.query_one(ContextPane).has_class("-collapsed")
        self.arrange_panes()

    def action_focus_queue(self) -> None:
        if self.queue.has_class("-collapsed"):
            self.context_collapsed = True
            self.arrange_panes()
        self.queue.option_list.focus()

    def action_focus_context(self) -> None:
        pane = self.query_one(ContextPane)
        if pane.has_class("-collapsed"):
            self.action_toggle_context()
        pane.focus_inside()

    def action_template(self) -> None:
        self.templates.start()

    def action_media(self) -> None:
        self.media.open_any()

    def action_sla(self) -> None:
        self.sla.open_screen()

    def action_notifications(self) -> None:
        self.notifications.show()

    def action_link(self) -> None:
        self.customer.link()

    def action_undo_link(self) -> None:
        self.customer.undo_latest()

    def action_tags(self) -> None:
        self.customer.edit_tags()
