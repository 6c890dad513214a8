"""Core wire models: users, teams, conversations, messages, channels, events, jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

Role = Literal["agent", "supervisor", "admin"]
MemberRole = Literal["member", "supervisor"]
Presence = Literal["online", "away", "offline"]
ConversationStatus = Literal["queued", "assigned", "closed"]
Priority = Literal["low", "normal", "high", "urgent"]
CloseReason = Literal["resolved", "spam", "duplicate", "no_response", "other"]


def _to_str(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Id = Annotated[str, BeforeValidator(_to_str)]
# Deliberately loose: one @, something on each side, a dot in the domain, no spaces.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class Wire(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="ignore")


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# Errors ---------------------------------------------------------------------------------
class ErrorDetail(Wire):
    code: str
    message: str
    details: Any = None


class ErrorBody(Wire):
    error: ErrorDetail


# Users and tokens -----------------------------------------------------------------------
class TeamMembership(Wire):
    id: Id
    slug: str
    name: str
    role: MemberRole


class UserPublic(Wire):
    id: Id
    name: str
    email: str
    role: Role
    capacity: int
    presence: Presence
    last_seen_at: datetime | None = None
    is_active: bool
    created_at: datetime


class Me(UserPublic):
    teams: list[TeamMembership] = []


class UserCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(max_length=320, pattern=EMAIL_PATTERN)
    role: Role = "agent"
    capacity: int = Field(5, ge=0, le=1000)

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class UserUpdate(Input):
    name: str | None = Field(None, min_length=1, max_length=200)
    role: Role | None = None
    capacity: int | None = Field(None, ge=0, le=1000)
    is_active: bool | None = None


class PresenceSet(Input):
    presence: Presence = "online"


class UserList(Wire):
    users: list[UserPublic]
    next_cursor: str | None = None


class TokenPublic(Wire):
    id: Id
    user_id: Id
    name: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class TokenCreate(Input):
    name: str = Field("default", min_length=1, max_length=100)


class TokenCreated(Wire):
    """The token itself is shown once, here, and never again."""

    token: str
    api_token: TokenPublic


class UserCreated(Wire):
    user: UserPublic
    token: str


class TokenList(Wire):
    tokens: list[TokenPublic]
    next_cursor: str | None = None


# Teams ----------------------------------------------------------------------------------
class TeamMemberPublic(Wire):
    user_id: Id
    name: str
    email: str
    role: MemberRole


class TeamPublic(Wire):
    id: Id
    slug: str
    name: str
    timezone: str
    after_hours_message: str | None = None
    auto_assign: bool
    member_count: int = 0
    members: list[TeamMemberPublic] | None = None
    created_at: datetime


class TeamCreate(Input):
    slug: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str | None = Field(None, max_length=200)
    timezone: str = "UTC"
    auto_assign: bool = True


class TeamUpdate(Input):
    name: str | None = Field(None, min_length=1, max_length=200)
    timezone: str | None = None
    auto_assign: bool | None = None
    after_hours_message: str | None = None


class TeamMemberSet(Input):
    role: MemberRole = "member"


class TeamList(Wire):
    teams: list[TeamPublic]
    next_cursor: str | None = None


# Conversations and messages -------------------------------------------------------------
class Ref(Wire):
    id: Id
    name: str | None = None


class IdentityRef(Wire):
    """How a customer is reached on a channel (WhatsApp ``wa_id``, Chat App user id)."""

    channel: str
    external_id: str


class CustomerRef(Ref):
    identities: list[IdentityRef] = []


class TeamRef(Wire):
    id: Id
    slug: str
    name: str


class ConversationPublic(Wire):
    id: Id
    number: int
    customer: CustomerRef
    team: TeamRef | None = None
    channel: str
    channel_account_id: Id
    status: ConversationStatus
    priority: Priority
    assignee: Ref | None = None
    subject: str | None = None
    required_skills: list[Any] = []
    cycle: int = 1
    first_message_at: datetime | None = None
    first_response_at: datetime | None = None
    last_customer_message_at: datetime | None = None
    last_message_at: datetime | None = None
    last_message_preview: str | None = None
    frt_due_at: datetime | None = None
    resolution_due_at: datetime | None = None
    escalated_at: datetime | None = None
    closed_at: datetime | None = None
    close_reason: str | None = None
    after_hours: bool = False
    rate_limited: bool = False
    window_open: bool
    window_expires_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class ConversationList(Wire):
    conversations: list[ConversationPublic]
    next_cursor: str | None = None


class MediaRef(Wire):
    id: Id
    media_type: str
    mime_type: str | None = None
    filename: str | None = None
    size: int | None = None
    status: str
    reason: str | None = None


class MessagePublic(Wire):
    id: Id
    conversation_id: Id
    direction: Literal["inbound", "outbound"]
    sender_type: Literal["customer", "agent", "system"]
    sender: Ref | None = None
    channel: str
    channel_message_id: str | None = None
    type: str
    content_text: str | None = None
    payload: dict[str, Any] = {}
    delivery_status: str
    error: dict[str, Any] | None = None
    flags: list[str] = []
    media: list[MediaRef] = []
    customer_time: datetime | None = None
    created_at: datetime


class MessageList(Wire):
    messages: list[MessagePublic]
    next_cursor: str | None = None


class ReplyCreate(Input):
    """An agent's message: free text (inside WhatsApp's window) or an approved template."""

    text: str | None = Field(None, max_length=4096)
    template: dict[str, Any] | None = None


class AssignBody(Input):
    user_id: Id | None = Field(None, description="a user id, `me`, or null to unassign")


class TransferBody(Input):
    team: str = Field(min_length=1, description="team slug or id")


class CloseBody(Input):
    reason: CloseReason = "resolved"


class ConversationUpdate(Input):
    priority: Priority | None = None
    subject: str | None = Field(None, max_length=300)


# Channels -------------------------------------------------------------------------------
class ChannelAccountPublic(Wire):
    id: Id
    kind: Literal["whatsapp", "chat_app"]
    external_id: str
    name: str
    waba_id: str | None = None
    display_number: str | None = None
    default_team: TeamRef | None = None
    is_active: bool
    created_at: datetime


class ChannelAccountList(Wire):
    channels: list[ChannelAccountPublic]
    next_cursor: str | None = None


class WhatsAppAccountCreate(Input):
    phone_number_id: str = Field(min_length=1, max_length=64, pattern=r"^\d+$")
    waba_id: str | None = Field(None, max_length=64)
    display_number: str | None = Field(None, max_length=32)
    name: str | None = Field(None, max_length=200)
    default_team: str | None = None


class DefaultTeamSet(Input):
    team: str | None = None


class ChannelAccountUpdate(Input):
    """Fields left out stay as they are; "" clears waba_id or display_number."""

    name: str | None = Field(None, max_length=200)
    waba_id: str | None = Field(None, max_length=64)
    display_number: str | None = Field(None, max_length=32)


# Notifications, events, jobs ------------------------------------------------------------
class NotificationPublic(Wire):
    id: Id
    user_id: Id
    kind: str
    text: str
    data: dict[str, Any] = {}
    read_at: datetime | None = None
    created_at: datetime


class NotificationList(Wire):
    notifications: list[NotificationPublic]
    unread_count: int
    next_cursor: str | None = None


class EventEnvelope(Wire):
    id: Id
    seq: int | None
    type: str
    created_at: datetime
    data: dict[str, Any]


class EventList(Wire):
    events: list[EventEnvelope]
    latest_seq: int
    next_cursor: str | None = None


class JobPublic(Wire):
    id: Id
    kind: str
    payload: dict[str, Any] = {}
    state: Literal["queued", "running", "done", "dead"]
    run_at: datetime | None = None
    attempts: int
    max_attempts: int
    locked_by: str | None = None
    locked_until: datetime | None = None
    last_error: str | None = None
    dedupe_key: str | None = None
    ordering_key: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobList(Wire):
    jobs: list[JobPublic]
    next_cursor: str | None = None


# Health ---------------------------------------------------------------------------------
class Health(Wire):
    status: str
    version: str | None = None
    checks: dict[str, str] = {}
