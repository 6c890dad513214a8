"""SQLModel tables. Importing this package registers every table on ``SQLModel.metadata``."""

from max_server.models.channels import ChannelAccount
from max_server.models.conversations import Conversation, Message
from max_server.models.customers import Customer, CustomerIdentity
from max_server.models.jobs import Event, Job, PeriodicTick
from max_server.models.media import InboundEvent, MediaFile, PendingStatus
from max_server.models.notifications import AuditEntry, Notification
from max_server.models.teams import AgentSkill, Team, TeamMember
from max_server.models.users import ApiToken, User

__all__ = [
    "AgentSkill",
    "ApiToken",
    "AuditEntry",
    "ChannelAccount",
    "Conversation",
    "Customer",
    "CustomerIdentity",
    "Event",
    "InboundEvent",
    "Job",
    "MediaFile",
    "Message",
    "Notification",
    "PendingStatus",
    "PeriodicTick",
    "Team",
    "TeamMember",
    "User",
]
