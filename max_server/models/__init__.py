"""SQLModel tables. Importing this package registers every table on ``SQLModel.metadata``."""

from max_server.models.canned import CannedResponse
from max_server.models.channels import ChannelAccount
from max_server.models.conversations import Conversation, Message
from max_server.models.customers import (
    Customer,
    CustomerIdentity,
    CustomerTag,
    IdentityLink,
    Ticket,
    Transaction,
)
from max_server.models.jobs import Event, Job, PeriodicTick
from max_server.models.media import InboundEvent, MediaFile, PendingStatus
from max_server.models.notifications import AuditEntry, Notification
from max_server.models.routing import CustomerBlock, RateEvent, RoutingDecision, RoutingRule
from max_server.models.sla import BusinessHours, Holiday, SlaOutcome, SlaPolicy, SlaTarget, SlaViolation
from max_server.models.teams import AgentSkill, Team, TeamMember
from max_server.models.templates import WhatsAppTemplate
from max_server.models.users import ApiToken, User
from max_server.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookSubscription

__all__ = [
    "AgentSkill",
    "ApiToken",
    "AuditEntry",
    "BusinessHours",
    "CannedResponse",
    "ChannelAccount",
    "Conversation",
    "Customer",
    "CustomerBlock",
    "CustomerIdentity",
    "CustomerTag",
    "Event",
    "Holiday",
    "IdentityLink",
    "InboundEvent",
    "Job",
    "MediaFile",
    "Message",
    "Notification",
    "PendingStatus",
    "PeriodicTick",
    "RateEvent",
    "RoutingDecision",
    "RoutingRule",
    "SlaOutcome",
    "SlaPolicy",
    "SlaTarget",
    "SlaViolation",
    "Team",
    "TeamMember",
    "Ticket",
    "Transaction",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
    "WhatsAppTemplate",
]
