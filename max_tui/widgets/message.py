"""One message in the thread: who and when, the text, media lines, and the delivery tick.

A message with attachments can take the focus: Enter (or a click) opens its media (save with a
fresh link, hand to the system's opener, preview an image). So can one whose send failed or may
not have happened: Ctrl+R (the screen's binding) sends it again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from max_server.schemas import MediaPublic, MediaRef, MessagePublic
from max_tui.formatting import clock_time, delivery_label, media_line
from max_tui.state import RESENT, can_resend

TICK_STYLES = {
    "read": "$text-accent bold",
    "played": "$text-accent bold",
    "delivered": "$text-success",
    "sent": "$text-muted",
    "failed": "$text-error bold",
    "unknown": "$text-warning bold",
}


def message_content(
    message: MessagePublic, now: datetime, tz: tzinfo, customer_name: str | None = None
) -> Content:
    when = clock_time(message.customer_time or message.created_at, now, tz)
    if message.sender_type == "system":
        text = message.content_text or message.type.replace("_", " ")
        return Content.assemble((f"{text} · {when}", "$text-muted italic"))
    who = (message.sender.name if message.sender else None) or (
        (customer_name or "Customer") if message.direction == "inbound" else "MAX"
    )
    head: list[str | tuple[str, str] | Content] = [(who, "bold"), (f" · {when}", "$text-muted")]
    if message.direction == "outbound":
        head += [" · ", (delivery_label(message), TICK_STYLES.get(message.delivery_status, "$text-muted"))]
        if RESENT in message.flags:
            head.append((" · resent", "$text-muted"))
        elif can_resend(message):
            head.append((" · ^R resends", "$text-muted"))
    if "rate_limited" in message.flags:
        head.append((" · rate limited", "$text-warning"))
    lines = [Content.assemble(*head)]
    if message.content_text:
        lines.append(Content(message.content_text))
    for media in message.media:
        style = "$text-error" if media.status in ("failed", "expired") else "$text-secondary"
        lines.append(Content.styled(media_line(media), style))
    if not message.content_text and not message.media:
        lines.append(Content.styled(f"[{message.type}]", "$text-muted italic"))
    return Content("\n").join(lines)


class MessageItem(Static):
    """Re-rendered in place when a status update arrives (``update_message``)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_media", "Open media", show=False, id="thread.open_media")
    ]

    @dataclass
    class MediaOpened(Message):
        message: MessagePublic

    def __init__(
        self, message: MessagePublic, now: datetime, tz: tzinfo, customer_name: str | None = None
    ) -> None:
        super().__init__(
            message_content(message, now, tz, customer_name), markup=False, classes=self._classes_for(message)
        )
        self.message = message
        self.tz = tz
        self.customer_name = customer_name
        self.can_focus = self._focusable(message)

    @staticmethod
    def _focusable(message: MessagePublic) -> bool:
        """Files open from a message, and a failed send is resent from it (Ctrl+R)."""
        return bool(message.media) or can_resend(message)

    @staticmethod
    def _classes_for(message: MessagePublic) -> str:
        kind = "system" if message.sender_type == "system" else message.direction
        problem = " -problem" if message.delivery_status in ("failed", "unknown") else ""
        return f"message {kind}{problem}"

    def update_message(self, message: MessagePublic, now: datetime) -> None:
        self.message = message
        self.can_focus = self._focusable(message)
        self.set_classes(self._classes_for(message))
        self.update(message_content(message, now, self.tz, self.customer_name))

    def update_media(self, media: MediaPublic, now: datetime) -> bool:
        """A ``media.stored`` / ``media.failed`` event for one of this message's files."""
        if not any(m.id == media.id for m in self.message.media):
            return False
        fresh = MediaRef.model_validate(media.model_dump())
        changed = [fresh if m.id == media.id else m for m in self.message.media]
        self.update_message(self.message.model_copy(update={"media": changed}), now)
        return True

    def action_open_media(self) -> None:
        if self.message.media:
            self.post_message(self.MediaOpened(self.message))

    def on_click(self) -> None:
        self.action_open_media()
