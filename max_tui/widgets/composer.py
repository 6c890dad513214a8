"""The reply box: multi-line, Enter sends, Ctrl+J (or Shift/Alt+Enter where the terminal tells
them apart) starts a new line. Outside WhatsApp's 24 h window it says so in its title (F8 sends
a template instead), and the screen does not send (``blocked``). ``/`` at the start of a word
opens the canned-response dropdown, which sees the keys first (``key_hook``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import TextArea

OPEN_TITLE = "Reply"
WINDOW_CLOSED = "24 h window closed: F8 sends a template"
CONVERSATION_CLOSED = "Closed: reopen it (F7) to reply"
# More than 24 h after the customer's last message WhatsApp accepts only approved templates.
EXPLANATIONS = {
    WINDOW_CLOSED: "Only approved templates can be sent now (F8); drafts are kept",
    CONVERSATION_CLOSED: "Reopen it (F7) to reply; drafts are kept",
}
PLACEHOLDER = "Type a reply…"
NO_CONVERSATION_TITLE = "Reply (open a conversation first)"
HINT = "⏎ send · ^J new line"


# TextArea's own keys, except F6/F7 (select line / select all): those are the screen's Close and
# Reopen, and a conversation action must not depend on where the focus is.
_EDITING_KEYS = [b for b in TextArea.BINDINGS if isinstance(b, Binding) and b.key not in ("f6", "f7")]


class Composer(TextArea, inherit_bindings=False):
    BINDINGS: ClassVar[list[BindingType]] = [
        *_EDITING_KEYS,
        Binding(
            "ctrl+j,shift+enter,alt+enter",
            "newline",
            "New line",
            key_display="^J",
            show=False,  # the composer's own border shows it, where the agent is looking
            id="composer.newline",
            tooltip="Insert a line break (Enter sends)",
        ),
    ]

    @dataclass
    class Submitted(Message):
        """Enter was pressed; ``text`` is what to send."""

        conversation_id: str | None
        text: str

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            soft_wrap=True,
            tab_behavior="focus",
            show_line_numbers=False,
            highlight_cursor_line=False,
            placeholder=PLACEHOLDER,
            id=id,
        )
        self.conversation_id: str | None = None
        self.blocked: str | None = None  # why sending is not possible now (shown as the title)
        self.sending = False
        # Sees each key first; True means it was used (the canned-response dropdown when open).
        self.key_hook: Callable[[events.Key], bool] | None = None
        self._show_state()

    async def _on_key(self, event: events.Key) -> None:
        if self.key_hook is not None and self.key_hook(event):
            event.stop()
            event.prevent_default()
            return
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(self.Submitted(self.conversation_id, self.text))
            return
        await super()._on_key(event)

    def action_newline(self) -> None:
        if not self.read_only:
            start, end = self.selection
            self.replace("\n", start, end, maintain_selection_offset=False)

    def switch_to(self, conversation_id: str | None, draft: str, blocked: str | None) -> None:
        """Shows ``conversation_id``'s draft (the caller saved the previous one first)."""
        self.conversation_id = conversation_id
        self.blocked = blocked
        self.load_text(draft)
        self.move_cursor(self.document.end)
        self._show_state()

    def set_blocked(self, blocked: str | None) -> None:
        if blocked != self.blocked:
            self.blocked = blocked
            self._show_state()

    def set_sending(self, sending: bool) -> None:
        self.sending = sending
        self.border_subtitle = "sending…" if sending else HINT

    def _show_state(self) -> None:
        if self.conversation_id is None:
            title = NO_CONVERSATION_TITLE
        else:
            title = self.blocked or OPEN_TITLE
        self.border_title = title
        self.placeholder = EXPLANATIONS.get(title, PLACEHOLDER)
        self.border_subtitle = "sending…" if self.sending else HINT
        self.set_class(self.blocked is not None and self.conversation_id is not None, "-blocked")
