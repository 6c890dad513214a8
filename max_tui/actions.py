"""The conversation actions behind F2–F7: ask what is needed (a dialog), call the API, say what
happened. The screen runs them in a worker and applies the conversation they return."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

from textual.screen import ModalScreen

from max_server.schemas import ConversationPublic, Priority
from max_tui.api import ConsoleApi
from max_tui.dialogs.close import CloseDialog
from max_tui.dialogs.priority import PriorityDialog
from max_tui.dialogs.transfer import TransferDialog

Ask = Callable[[ModalScreen[str | None]], Awaitable[str | None]]
VERBS = ("take", "unassign", "transfer", "priority", "close", "reopen")


async def perform(
    verb: str, conversation: ConversationPublic, api: ConsoleApi, ask: Ask
) -> ConversationPublic | None:
    """The conversation after ``verb``, or None when the agent cancelled. Raises ``ApiError``."""
    number, conversation_id = conversation.number, conversation.id
    if verb == "take":
        return await api.assign(conversation_id, "me")
    if verb == "unassign":
        return await api.assign(conversation_id, None)
    if verb == "reopen":
        return await api.reopen(conversation_id)
    if verb == "transfer":
        current_team = conversation.team.id if conversation.team else None
        team = await ask(TransferDialog(number, await api.teams(), current_team))
        return await api.transfer(conversation_id, team) if team is not None else None
    if verb == "priority":
        priority = await ask(PriorityDialog(number, conversation.priority))
        if priority is None or priority == conversation.priority:
            return None
        return await api.set_priority(conversation_id, cast(Priority, priority))
    if verb == "close":
        reason = await ask(CloseDialog(number))
        return await api.close(conversation_id, reason) if reason is not None else None
    raise ValueError(f"unknown conversation action: {verb}")


def done_message(verb: str, conversation: ConversationPublic) -> str:
    number = f"#{conversation.number}"
    return {
        "take": f"{number} is yours",
        "unassign": f"{number} is back in the queue",
        "reopen": f"{number} is open again",
        "transfer": f"{number} moved to {conversation.team.name if conversation.team else 'no team'}",
        "priority": f"{number} is now {conversation.priority}",
        "close": f"{number} closed ({conversation.close_reason})",
    }[verb]
