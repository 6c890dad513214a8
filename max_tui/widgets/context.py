"""The right-hand pane: facts about the open conversation and its customer.

Part 1 shows what the conversation itself carries (status, team, assignee, priority, SLA
deadlines, WhatsApp's window). The customer's context (identities, history, orders) comes in
part 2; this pane is where it goes. Ctrl+O collapses it.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from textual.content import Content
from textual.widgets import Static

from max_server.schemas import ConversationPublic
from max_tui.formatting import channel_label, clock_time, compact_duration, window_open


def _when(moment: datetime | None, now: datetime, tz: tzinfo) -> str:
    if moment is None:
        return "—"
    relative = compact_duration(abs(moment - now))
    return f"{clock_time(moment, now, tz)} ({'in ' + relative if moment > now else relative + ' ago'})"


def context_content(conversation: ConversationPublic, now: datetime, tz: tzinfo) -> Content:
    rows: list[tuple[str, str, str]] = [
        ("Customer", conversation.customer.name or "Unknown customer", "bold"),
        ("Channel", channel_label(conversation.channel), ""),
        ("Status", conversation.status, "$text-warning" if conversation.status == "queued" else ""),
        ("Team", conversation.team.name if conversation.team else "none", ""),
        ("Assignee", (conversation.assignee.name or "someone") if conversation.assignee else "nobody", ""),
        ("Priority", conversation.priority, "$text-error" if conversation.priority == "urgent" else ""),
        ("Opened", _when(conversation.first_message_at, now, tz), ""),
    ]
    if conversation.first_response_at is None and conversation.frt_due_at is not None:
        late = now >= conversation.frt_due_at
        rows.append(
            ("First reply", "due " + _when(conversation.frt_due_at, now, tz), "$text-error" if late else "")
        )
    if conversation.resolution_due_at is not None and conversation.status != "closed":
        late = now >= conversation.resolution_due_at
        rows.append(
            ("Resolve by", _when(conversation.resolution_due_at, now, tz), "$text-error" if late else "")
        )
    if conversation.channel == "whatsapp":
        is_open = window_open(conversation, now)
        text = ("open until " if is_open else "closed since ") + _when(
            conversation.window_expires_at, now, tz
        )
        rows.append(("24 h window", text, "$text-success" if is_open else "$text-error"))
    if conversation.closed_at is not None and conversation.status == "closed":
        rows.append(("Closed", f"{_when(conversation.closed_at, now, tz)}, {conversation.close_reason}", ""))
    lines = [Content.assemble((label, "$text-muted"), "\n", (value, style)) for label, value, style in rows]
    return Content("\n").join(lines)


class ContextPane(Static):
    """Collapsible (``-collapsed``); re-rendered when the open conversation changes."""

    def __init__(self, tz: tzinfo, *, id: str | None = None) -> None:
        super().__init__("", markup=False, id=id)
        self.tz = tz
        self.border_title = "Context"

    def show(self, conversation: ConversationPublic | None, now: datetime) -> None:
        if conversation is None:
            self.update(Content.styled("Open a conversation to see its customer here.", "$text-muted"))
        else:
            self.update(context_content(conversation, now, self.tz))
