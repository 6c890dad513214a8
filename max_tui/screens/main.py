"""The agent's screen: queue on the left, the thread and composer in the centre, context on the right.

Live events arrive through ``apply_event`` (``MaxApp`` forwards them from the websocket worker);
every REST call runs in a worker, so the screen never waits on the network.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from pydantic import ValidationError
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, TextArea

from max_server.client import ApiError
from max_server.schemas import ConversationPublic, MessagePublic
from max_tui.actions import VERBS, done_message, perform
from max_tui.dialogs.search import SEARCH_LIMIT, SearchDialog
from max_tui.formatting import window_open
from max_tui.keys import MAIN_BINDINGS
from max_tui.session import ConsoleContext
from max_tui.widgets.composer import CONVERSATION_CLOSED, WINDOW_CLOSED, Composer
from max_tui.widgets.context import ContextPane
from max_tui.widgets.queue import QueuePane
from max_tui.widgets.thread import ThreadView
from max_tui.widgets.top_bar import TopBar

log = logging.getLogger("max.tui")

MAX_REPLY = 4096
TICK_SECONDS = 30
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
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.refresh_queue()
        self.query_one(ContextPane).show(None, self.ctx.now())
        self.set_interval(TICK_SECONDS, self.tick)

    def tick(self) -> None:
        """Time moves on: waiting times, deadlines, and WhatsApp's window (it can close while
        the agent is reading)."""
        self.refresh_queue()
        self._show_current()

    def on_resize(self) -> None:
        if self.context_collapsed is None:
            narrow = self.size.width < WIDE_ENOUGH_FOR_CONTEXT
            self.query_one(ContextPane).set_class(narrow, "-collapsed")

    @property
    def queue(self) -> QueuePane:
        return self.query_one(QueuePane)

    @property
    def composer(self) -> Composer:
        return self.query_one(Composer)

    @property
    def thread(self) -> ThreadView:
        return self.query_one(ThreadView)

    @property
    def current(self) -> ConversationPublic | None:
        return self.ctx.store.get(self.current_id) if self.current_id else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The footer offers what fits the open conversation: hidden (False) when it cannot apply,
        dimmed (None) while no conversation is open."""
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
        self.loads += 1
        self.refresh_queue()
        if current is not None:
            self._show_current()
            self.load_thread(current.id)

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
        kind, data = str(envelope.get("type", "")), envelope.get("data")
        if not isinstance(data, dict):
            return
        try:
            await self._apply(kind, data)
        except ValidationError as exc:  # a newer server's shape: skip the event, keep the console
            log.warning("ignored a %s event the console cannot read: %s", kind, exc)

    async def _apply(self, kind: str, data: dict[str, Any]) -> None:
        if kind.startswith("conversation."):
            conversation = ConversationPublic.model_validate(data)
            if self.ctx.store.upsert(conversation):
                self.refresh_queue()
                if conversation.id == self.current_id:
                    self._show_current()
        elif kind in ("message.created", "message.status_updated"):
            message = MessagePublic.model_validate(data)
            if kind == "message.created":
                if self.ctx.store.note_message(message):
                    self.refresh_queue()
                    if message.conversation_id == self.current_id:
                        self._show_current()
                elif self.ctx.store.get(message.conversation_id) is None:
                    self.fetch_conversation(message.conversation_id)
            await self.thread.add_or_update(message, self.ctx.now())

    @work(group="fetch", exit_on_error=False)
    async def fetch_conversation(self, conversation_id: str) -> None:
        """A message for a conversation we did not hold (e.g. it became visible to us)."""
        try:
            conversation = await self.ctx.api.conversation(conversation_id)
        except ApiError:
            return  # not visible to us after all
        if self.ctx.store.upsert(conversation):
            self.refresh_queue()

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
            conversation_id, self.ctx.drafts.get(conversation_id), self._blocked(conversation)
        )
        self.query_one(ContextPane).show(conversation, self.ctx.now())
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

    def _show_current(self) -> None:
        conversation = self.current
        self.refresh_bindings()
        if conversation is None:
            return
        self.thread.show_header(conversation)
        self.query_one(ContextPane).show(conversation, self.ctx.now())
        self.composer.set_blocked(self._blocked(conversation))

    def _blocked(self, conversation: ConversationPublic) -> str | None:
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
        conversation = self.ctx.store.get(event.conversation_id) if event.conversation_id else None
        text = event.text.strip()
        if conversation is None or not text or self.composer.sending:
            return
        blocked = self._blocked(conversation)
        if blocked is not None:
            self.composer.set_blocked(blocked)
            self.notify(blocked, severity="warning")
            return
        if len(text) > MAX_REPLY:
            self.notify(f"A message may have at most {MAX_REPLY} characters.", severity="warning")
            return
        self.send(conversation.id, event.text)

    @work(group="send", exit_on_error=False)
    async def send(self, conversation_id: str, text: str) -> None:
        composer = self.composer
        composer.set_sending(True)
        try:
            message = await self.ctx.api.reply(conversation_id, text.strip())
        except ApiError as exc:
            if exc.code == "whatsapp_window_closed":
                held = self.ctx.store.get(conversation_id)
                if held is not None:
                    self.ctx.store.upsert(held.model_copy(update={"window_open": False}))
                composer.set_blocked(WINDOW_CLOSED)
            self.notify(f"Not sent: {exc.message}", severity="error")
            return
        finally:
            composer.set_sending(False)
        if composer.conversation_id == conversation_id and composer.text == text:
            composer.clear()
        else:
            self.ctx.drafts.set(conversation_id, "")
            self.ctx.drafts_changed()
        if self.ctx.store.note_message(message):
            self.refresh_queue()
        await self.thread.add_or_update(message, self.ctx.now())

    # Actions -----------------------------------------------------------------------------------
    def _need_current(self) -> ConversationPublic | None:
        conversation = self.current
        if conversation is None:
            self.notify("Open a conversation first (Enter on a queue row).", severity="warning")
        return conversation

    @work(group="actions", exit_on_error=False)
    async def _act(self, verb: str) -> None:
        conversation = self._need_current()
        if conversation is None:
            return
        try:
            changed = await perform(verb, conversation, self.ctx.api, self.app.push_screen_wait)
        except ApiError as exc:
            self.notify(exc.message, title="Not done", severity="error")
            return
        if changed is None:
            return  # cancelled in its dialog
        self.ctx.store.upsert(changed)
        self.refresh_queue()
        if changed.id == self.current_id:
            self._show_current()
        self.notify(done_message(verb, changed), timeout=3)

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
        self._search()

    @work(group="search", exit_on_error=False)
    async def _search(self) -> None:
        async def load() -> list[ConversationPublic]:
            return await self.ctx.api.conversations(limit=SEARCH_LIMIT, status="all")

        chosen = await self.app.push_screen_wait(SearchDialog(load, self.ctx.tz))
        if chosen is not None:
            await self.open_conversation(chosen, focus_composer=True)

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
        pane = self.query_one(ContextPane)
        self.context_collapsed = not pane.has_class("-collapsed")
        pane.set_class(self.context_collapsed, "-collapsed")

    def action_focus_queue(self) -> None:
        self.queue.option_list.focus()
