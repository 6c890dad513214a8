"""What the console knows about conversations, kept current by the live stream (no I/O here).

The queue's three tabs are views over one store: an event that changes a conversation updates it
once, and each tab decides by a rule whether it belongs there (closing it takes it out of
"Mine"; a transfer to another team takes it out of the team queue).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from max_server.schemas import ConversationPublic, Me, MessagePublic

WHATSAPP_WINDOW = timedelta(hours=24)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Tab(StrEnum):
    MINE = "mine"
    TEAM = "team"
    ALL = "all"


TAB_TITLES = {Tab.MINE: "Mine", Tab.TEAM: "Team queue", Tab.ALL: "All open"}


@dataclass(frozen=True)
class Viewer:
    """The agent using the console, as ``GET /api/v1/me`` describes them."""

    user_id: str
    name: str
    role: str
    team_ids: frozenset[str] = frozenset()
    supervised_team_ids: frozenset[str] = frozenset()

    @classmethod
    def from_me(cls, me: Me) -> Viewer:
        return cls(
            user_id=me.id,
            name=me.name,
            role=me.role,
            team_ids=frozenset(t.id for t in me.teams),
            supervised_team_ids=frozenset(t.id for t in me.teams if t.role == "supervisor"),
        )

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def supervises(self) -> bool:
        """Supervisors and admins get "All open" (and the console opens on it)."""
        return self.role in ("supervisor", "admin") or bool(self.supervised_team_ids)

    @property
    def tabs(self) -> tuple[Tab, ...]:
        return (Tab.MINE, Tab.TEAM, Tab.ALL) if self.supervises else (Tab.MINE, Tab.TEAM)

    @property
    def first_tab(self) -> Tab:
        return Tab.ALL if self.supervises else Tab.MINE

    def sees(self, conversation: ConversationPublic) -> bool:
        """DESIGN §5: one's teams, what is assigned to one, everything for admins."""
        if self.is_admin:
            return True
        if conversation.assignee is not None and conversation.assignee.id == self.user_id:
            return True
        return conversation.team is not None and conversation.team.id in self.team_ids

    def sees_held(self, conversation: ConversationPublic) -> bool:
        """Held by the customer rate limit: not work for agents, only for the team's supervisors
        (the server lists it only to them, and to whoever a supervisor gave it to)."""
        if self.is_admin:
            return True
        if conversation.assignee is not None and conversation.assignee.id == self.user_id:
            return True
        return conversation.team is not None and conversation.team.id in self.supervised_team_ids

    def belongs(self, conversation: ConversationPublic, tab: Tab) -> bool:
        if conversation.status == "closed" or not self.sees(conversation):
            return False
        if conversation.rate_limited and not self.sees_held(conversation):
            return False
        if tab is Tab.MINE:
            return conversation.assignee is not None and conversation.assignee.id == self.user_id
        if tab is Tab.TEAM:
            in_my_team = self.is_admin or (
                conversation.team is not None and conversation.team.id in self.team_ids
            )
            return conversation.status == "queued" and in_my_team
        return True


def activity(conversation: ConversationPublic) -> datetime:
    return conversation.last_message_at or conversation.created_at or _EPOCH


@dataclass
class ConversationStore:
    viewer: Viewer
    conversations: dict[str, ConversationPublic] = field(default_factory=dict)

    def replace_all(self, items: Iterable[ConversationPublic]) -> None:
        """A fresh snapshot (first load or resync): what is not in it is gone."""
        self.conversations = {c.id: c for c in items}

    def get(self, conversation_id: str) -> ConversationPublic | None:
        return self.conversations.get(conversation_id)

    def upsert(self, conversation: ConversationPublic) -> bool:
        """Stores ``conversation`` unless what we hold is newer; returns whether it changed."""
        held = self.conversations.get(conversation.id)
        if held is not None and held.updated_at > conversation.updated_at:
            return False
        if held is not None and activity(held) > activity(conversation):
            # A conversation event can trail the message that moved its last activity on.
            conversation = conversation.model_copy(
                update={
                    "last_message_at": held.last_message_at,
                    "last_message_preview": held.last_message_preview,
                    "last_customer_message_at": held.last_customer_message_at,
                    "window_expires_at": held.window_expires_at,
                    "window_open": held.window_open,
                }
            )
        self.conversations[conversation.id] = conversation
        return held != conversation

    def note_message(self, message: MessagePublic) -> bool:
        """Moves the conversation's preview and times on for a new message (events about
        messages do not carry the conversation). False when the conversation is unknown."""
        held = self.conversations.get(message.conversation_id)
        if held is None:
            return False
        moment = message.customer_time or message.created_at
        update: dict[str, object] = {}
        if held.last_message_at is None or moment >= held.last_message_at:
            update["last_message_at"] = moment
            update["last_message_preview"] = preview(message)
        from_customer = message.direction == "inbound" and message.sender_type == "customer"
        if from_customer and (
            held.last_customer_message_at is None or moment > held.last_customer_message_at
        ):
            update["last_customer_message_at"] = moment
            if held.channel == "whatsapp":
                update["window_expires_at"] = moment + WHATSAPP_WINDOW
                update["window_open"] = True
        if update:
            self.conversations[held.id] = held.model_copy(update=update)
        return bool(update)

    def rows(self, tab: Tab) -> list[ConversationPublic]:
        """The tab's conversations, latest activity first."""
        found = [c for c in self.conversations.values() if self.viewer.belongs(c, tab)]
        return sorted(found, key=lambda c: (activity(c), int(c.id) if c.id.isdigit() else 0), reverse=True)

    def counts(self) -> dict[Tab, int]:
        return {tab: len(self.rows(tab)) for tab in self.viewer.tabs}


def preview(message: MessagePublic) -> str:
    if message.content_text:
        return " ".join(message.content_text.split())[:200]
    if message.media:
        return f"[{message.media[0].media_type}]"
    return f"[{message.type}]"


DELIVERY_RANK = {"pending": 0, "sending": 1, "unknown": 1, "sent": 2, "delivered": 3, "read": 4, "played": 5}


def delivery_moves_forward(current: str, new: str) -> bool:
    """Whether a message in state ``current`` may show ``new`` (the server's rule: states never go
    backwards). Needed because a REST answer can arrive after a newer state came over the stream."""
    if new == current:
        return True
    if new == "failed":
        return DELIVERY_RANK.get(current, 0) < DELIVERY_RANK["delivered"]
    if current == "failed" or new not in DELIVERY_RANK:
        return False
    if new == "unknown":
        return current in ("pending", "sending")
    return DELIVERY_RANK[new] > DELIVERY_RANK.get(current, 0) or (
        current == "unknown" and DELIVERY_RANK[new] >= DELIVERY_RANK["sent"]
    )


RESENT = "resent"


def can_resend(message: MessagePublic) -> bool:
    """An agent's text or template whose send failed or may not have happened, not resent yet
    (the server's rule for ``POST …/messages/{id}/resend``)."""
    return (
        message.direction == "outbound"
        and message.sender_type == "agent"
        and message.delivery_status in ("failed", "unknown")
        and message.type in ("text", "template")
        and RESENT not in message.flags
    )
