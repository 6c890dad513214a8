"""The canned-response dropdown of the composer.

textual-autocomplete's ``AutoComplete`` only drives an ``Input``; the composer is a multi-line
``TextArea``, so this is a small dropdown of our own on the same hooks and patterns: it follows
the target's messages (``message_signal``), floats over the screen at the cursor
(``overlay: screen``), and keeps AutoComplete's overridable steps — ``get_search_string``,
``get_matches``, ``should_show_dropdown``, ``apply_completion``, ``post_completion`` — and its
``DropdownItem`` options. Keys reach it first through the composer's ``key_hook`` (the target
must not see Tab, Enter, ↑, ↓ or Escape while the dropdown is open).

Typing ``/`` at the start of a word opens it; what follows filters the agent's responses locally
(``CannedCatalog.search``); Tab or Enter inserts the highlighted one, Escape closes it. Inserting
removes the ``/shortcut`` typed and posts ``Chosen``: the screen fills the variables (from the
context, or with a small form) and inserts the text there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.content import Content
from textual.geometry import Offset
from textual.message import Message
from textual.widget import Widget
from textual.widgets import OptionList, TextArea
from textual_autocomplete import DropdownItem

from max_server.schemas import CannedResponsePublic
from max_tui.canned import CannedCatalog, ShortcutToken, fill_hint, shortcut_token

MAX_OPTIONS = 20  # built per keystroke; the list shows 8 and scrolls
MAX_WIDTH = 72
HINT = "⇥/⏎ insert · esc close"


@dataclass(frozen=True)
class TargetState:
    """As in textual-autocomplete: the target's text before the cursor (on its line) and where."""

    line_before_cursor: str
    row: int
    column: int


class CannedDropdown(Widget):
    @dataclass
    class Chosen(Message):
        """A response was picked; its ``/shortcut`` was removed at ``location``."""

        response: CannedResponsePublic
        conversation_id: str | None
        location: tuple[int, int]

    @dataclass
    class Opened(Message):
        """The dropdown appeared (the screen revalidates the cached list then)."""

    def __init__(self, catalog: CannedCatalog, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.catalog = catalog
        self.target: TextArea | None = None
        self.conversation_id: Callable[[], str | None] = lambda: None
        self.token: ShortcutToken | None = None
        self.matches: list[CannedResponsePublic] = []
        self.more = False  # more matches than the dropdown lists
        self._shown: tuple[object, ...] = ()
        self._placed: tuple[int, int, int, int] = (0, 0, 0, 0)
        self.last_update_s = 0.0  # how long the last rebuild took (bench/autocomplete.py reads these)
        self.updated_at = 0.0

    def compose(self) -> ComposeResult:
        options = OptionList(id="canned-options", markup=False)
        options.can_focus = False
        yield options

    @property
    def option_list(self) -> OptionList:
        return self.query_one("#canned-options", OptionList)

    @property
    def is_open(self) -> bool:
        return bool(self.display)

    def attach(self, target: TextArea, conversation_id: Callable[[], str | None]) -> None:
        """Follows ``target``: its edits and cursor moves rebuild the dropdown."""
        self.target = target
        self.conversation_id = conversation_id
        target.message_signal.subscribe(self, self._listen)
        self.watch(target, "has_focus", self._focus_changed, init=False)

    # Following the target ----------------------------------------------------------------------
    def _listen(self, message: Message) -> None:
        if isinstance(message, TextArea.Changed | TextArea.SelectionChanged):
            self.update_for_target()

    def _focus_changed(self, has_focus: bool) -> None:
        if not has_focus:
            self.action_hide()

    def _target_state(self) -> TargetState | None:
        target = self.target
        if target is None:
            return None
        start, end = target.selection
        if start != end:
            return None  # a selection is being made: not typing a shortcut
        row, column = end
        return TargetState(target.document.get_line(row)[:column], row, column)

    def get_search_string(self, state: TargetState) -> ShortcutToken | None:
        return shortcut_token(state.line_before_cursor)

    def get_matches(self, token: ShortcutToken) -> list[CannedResponsePublic]:
        # One more than shown: enough to know there are more ("30+"), no more work than that.
        found = self.catalog.search(token.query, limit=MAX_OPTIONS + 1)
        self.more = len(found) > MAX_OPTIONS
        return found[:MAX_OPTIONS]

    def should_show_dropdown(self, token: ShortcutToken | None) -> bool:
        return token is not None and bool(self.matches) and self.target is not None and self.target.has_focus

    def update_for_target(self) -> None:
        started = time.perf_counter()
        state = self._target_state()
        token = self.get_search_string(state) if state is not None else None
        was_open = self.is_open
        shown = (token, state.row if state else None, id(self.catalog.responses))
        if was_open and shown == self._shown:
            return  # the same keystroke's other message (Changed, then SelectionChanged)
        self._shown = shown
        self.token = token
        self.matches = self.get_matches(token) if token is not None else []
        if not self.should_show_dropdown(token):
            self.action_hide()
            self.updated_at = time.perf_counter()
            self.last_update_s = self.updated_at - started
            return
        self._rebuild()
        self.display = True
        self._align()
        if not was_open:
            self.post_message(self.Opened())
        self.updated_at = time.perf_counter()
        self.last_update_s = self.updated_at - started

    def _rebuild(self) -> None:
        width = self._width()
        options = self.option_list
        items = []
        for response in self.matches:
            head = Content.styled(response.shortcut, "bold")
            hint = fill_hint(response)
            room = max(width - head.cell_length - 4, 4)
            hint = hint if len(hint) <= room else hint[: room - 1] + "…"
            items.append(DropdownItem(Content.assemble(head, "  ", (hint, "$text-muted")), id=response.id))
        options.set_options(items)
        options.highlighted = 0
        shown = f"{len(self.matches)}{'+' if self.more else ''} of {len(self.catalog):,}"
        self.border_subtitle = f"{shown} · {HINT}"

    def _width(self) -> int:
        return max(min(MAX_WIDTH, self.screen.size.width - 2), 20)

    def _align(self) -> None:
        """Just below the ``/``, or above it when the composer sits at the bottom (it does)."""
        if self.target is None or self.token is None:
            return
        x, y = self.target.cursor_screen_offset
        # Anchored where the /shortcut starts: it does not slide (nor re-lay the screen) per key.
        state = self._target_state()
        if state is not None:
            x -= cell_len(state.line_before_cursor[self.token.column :])
        width = self._width()
        height = min(len(self.matches), 8) + 2  # rows and the border
        screen_width, screen_height = self.screen.size
        top = y + 1 if y + 1 + height <= screen_height else max(y - height, 0)
        left = max(min(x - 1, screen_width - width), 0)
        if (left, top, width, height) == self._placed:
            return  # unchanged: setting styles again would lay the screen out again
        self._placed = (left, top, width, height)
        self.styles.width = width
        self.styles.height = height
        self.absolute_offset = Offset(left, top)

    # Keys (through the composer's key_hook) ----------------------------------------------------
    def take_key(self, event: events.Key) -> bool:
        """True when the key was the dropdown's (the composer then ignores it)."""
        if not self.is_open or not self.matches:
            return False
        options = self.option_list
        highlighted = options.highlighted or 0
        if event.key == "down":
            options.highlighted = (highlighted + 1) % options.option_count
        elif event.key == "up":
            options.highlighted = (highlighted - 1) % options.option_count
        elif event.key in ("tab", "enter"):
            self._complete(highlighted)
        elif event.key == "escape":
            self.action_hide()
        else:
            return False
        return True

    def action_hide(self) -> None:
        self.display = False
        self._shown = ()

    def _complete(self, index: int) -> None:
        if self.token is None or not 0 <= index < len(self.matches):
            return
        self.apply_completion(self.matches[index], self.token)
        self.post_completion()

    def apply_completion(self, response: CannedResponsePublic, token: ShortcutToken) -> None:
        """Removes the ``/shortcut`` typed; the screen inserts the filled text there."""
        target = self.target
        state = self._target_state()
        if target is None or state is None:
            return
        start = (state.row, token.column)
        target.delete(start, (state.row, state.column), maintain_selection_offset=False)
        self.post_message(self.Chosen(response, self.conversation_id(), start))

    def post_completion(self) -> None:
        self.action_hide()
