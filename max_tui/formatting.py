"""How the console shows times, sizes, delivery states and waiting customers (pure functions).

Every function that depends on "now" takes it as an argument: the console's clock is injected
(``MaxApp(now=...)``), so snapshots and tests are exact.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the console paints before the wire models load
    from max_server.schemas import ConversationPublic, MediaRef, MessagePublic

Now = Callable[[], datetime]

CHANNEL_LABELS = {"whatsapp": "WhatsApp", "chat_app": "Chat App"}
CHANNEL_SHORT = {"whatsapp": "WA", "chat_app": "Chat"}
PRIORITY_SHORT = {"urgent": "urgent", "high": "high", "normal": "normal", "low": "low"}
# Labels are words as well as marks, so the state reads the same without colour (NO_COLOR).
DELIVERY_TICKS = {
    "pending": "◷ queued",
    "sending": "◷ sending",
    "sent": "✓ sent",
    "delivered": "✓✓ delivered",
    "read": "✓✓ read",
    "played": "✓✓ played",
    "failed": "✗ failed",
    "unknown": "? unknown",
}


def system_now() -> datetime:
    return datetime.now(UTC)


def channel_label(channel: str) -> str:
    return CHANNEL_LABELS.get(channel, channel)


def channel_short(channel: str) -> str:
    return CHANNEL_SHORT.get(channel, channel[:4])


def compact_duration(delta: timedelta) -> str:
    """``42s``, ``5m``, ``3h``, ``2d`` (the largest unit only: queue rows are narrow)."""
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def duration_text(seconds: int) -> str:
    """``45s``, ``5m``, ``1h10m``, ``2d3h`` (two units at most: for targets and actual times)."""
    seconds = max(int(seconds), 0)
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    parts: list[str] = []
    for name, size in units:
        if seconds >= size or (name == "s" and not parts):
            parts.append(f"{seconds // size}{name}")
            seconds %= size
        if len(parts) == 2 or (parts and seconds == 0):
            break
    return "".join(parts)


def customer_waiting_since(conversation: ConversationPublic) -> datetime | None:
    """When the customer's unanswered message arrived, or None when an agent spoke last."""
    last_customer = conversation.last_customer_message_at
    if last_customer is None or conversation.status == "closed":
        return None
    last_any = conversation.last_message_at
    if last_any is not None and last_any > last_customer:
        return None
    return last_customer


def waiting_label(conversation: ConversationPublic, now: datetime) -> str:
    since = customer_waiting_since(conversation)
    return compact_duration(now - since) if since is not None else ""


def frt_breached(conversation: ConversationPublic, now: datetime) -> bool:
    due = conversation.frt_due_at
    return due is not None and conversation.first_response_at is None and now >= due


def window_open(conversation: ConversationPublic, now: datetime) -> bool:
    """WhatsApp's 24 h window, judged with the console's clock (it may close while an agent reads)."""
    if conversation.channel != "whatsapp":
        return True
    expires = conversation.window_expires_at
    if expires is None:
        return conversation.window_open
    return now < expires


def clock_time(moment: datetime, now: datetime, tz: tzinfo) -> str:
    """``14:05`` today, ``Mon 14:05`` this week, ``3 Mar 14:05`` before, ``3 Mar 2025`` other years."""
    local, today = moment.astimezone(tz), now.astimezone(tz)
    if local.date() == today.date():
        return local.strftime("%H:%M")
    if timedelta(0) < today - local < timedelta(days=6):
        return local.strftime("%a %H:%M")
    if local.year == today.year:
        return f"{local.day} {local.strftime('%b %H:%M')}"
    return f"{local.day} {local.strftime('%b %Y')}"


def human_size(size: int | None) -> str:
    if size is None:
        return "size unknown"
    value, unit = float(size), "B"
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            break
        value /= 1024
    if unit == "B" or value >= 100:
        return f"{round(value)} {unit}"
    return f"{value:.1f} {unit}"


def media_line(media: MediaRef) -> str:
    """``[image] 1.2 MB photo.jpg`` plus its state when it is not simply stored."""
    parts = [f"[{media.media_type}]", human_size(media.size)]
    if media.filename:
        parts.append(media.filename)
    elif media.mime_type:
        parts.append(media.mime_type)
    if media.status != "stored":
        parts.append(f"({media.status}{': ' + media.reason if media.reason else ''})")
    return " ".join(parts)


def delivery_label(message: MessagePublic) -> str:
    """The tick and, for failed or unknown sends, what went wrong."""
    label = DELIVERY_TICKS.get(message.delivery_status, message.delivery_status)
    if message.delivery_status in ("failed", "unknown"):
        detail = error_text(message.error)
        if not detail and message.delivery_status == "unknown":
            detail = "the send was interrupted; it may not have reached the customer"
        if detail:
            label += f" — {detail}"
    return label


def error_text(error: dict[str, object] | None) -> str:
    if not error:
        return ""
    code, title = error.get("code"), error.get("title")
    message = error.get("message") or error.get("details")
    head = " ".join(str(p) for p in (code, title) if p)
    if message and message != title:
        return f"{head}: {message}" if head else str(message)
    return head


def one_line(text: str | None, width: int) -> str:
    """``text`` on one line, cut with an ellipsis to ``width`` cells."""
    flat = " ".join((text or "").split())
    if width <= 0:
        return ""
    return flat if len(flat) <= width else flat[: max(width - 1, 0)] + "…"
