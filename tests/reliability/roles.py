"""The minimum role of every route, written down by hand from DESIGN.md §5 (roles agent <
supervisor < admin): configuration (SLA policies, hours, templates, webhooks, users, teams,
channels, routing, skills) is admin-only, reports need supervisor or more, and what is left is
for every signed-in user, narrowed by the visibility rule. ``test_access_matrix`` checks that
the app's guards match this table exactly: lowering a guard, adding a route without a row, or
leaving a row for a route that is gone fails it.

"public" routes answer without a token and carry their own check (a signature, an HMAC link).
"""

from __future__ import annotations

MIN_ROLE: dict[tuple[str, str], str] = {
    # Canned responses: everyone uses them; who may change a scope (global: admins, team: its
    # supervisors, personal: its owner) is checked per response.
    ("GET", "/api/v1/canned-responses"): "agent",
    ("POST", "/api/v1/canned-responses"): "agent",
    ("DELETE", "/api/v1/canned-responses/{response_id}"): "agent",
    ("GET", "/api/v1/canned-responses/{response_id}"): "agent",
    ("PATCH", "/api/v1/canned-responses/{response_id}"): "agent",
    ("POST", "/api/v1/canned-responses/{response_id}/render"): "agent",
    ("POST", "/api/v1/canned-responses/{response_id}/send"): "agent",
    ("POST", "/api/v1/canned-responses/{response_id}/used"): "agent",
    # Channels: configuration (admins), read by everyone.
    ("GET", "/api/v1/channels"): "agent",
    ("POST", "/api/v1/channels/whatsapp"): "admin",
    ("GET", "/api/v1/channels/{channel}"): "agent",
    ("PATCH", "/api/v1/channels/{channel}"): "admin",
    ("PUT", "/api/v1/channels/{channel}/default-team"): "admin",
    # Conversations: the visibility rule decides (404 for what one may not see).
    ("GET", "/api/v1/conversations"): "agent",
    ("GET", "/api/v1/conversations/{conversation_id}"): "agent",
    ("PATCH", "/api/v1/conversations/{conversation_id}"): "agent",
    ("POST", "/api/v1/conversations/{conversation_id}/assign"): "agent",
    ("POST", "/api/v1/conversations/{conversation_id}/close"): "agent",
    ("GET", "/api/v1/conversations/{conversation_id}/messages"): "agent",
    ("POST", "/api/v1/conversations/{conversation_id}/messages"): "agent",
    ("POST", "/api/v1/conversations/{conversation_id}/messages/{message_id}/resend"): "agent",
    ("POST", "/api/v1/conversations/{conversation_id}/reopen"): "agent",
    ("GET", "/api/v1/conversations/{conversation_id}/routing"): "agent",
    ("POST", "/api/v1/conversations/{conversation_id}/transfer"): "agent",
    # Customers: visibility as for conversations; feeds from other systems and erasure are admin-only.
    ("GET", "/api/v1/customers"): "agent",
    ("GET", "/api/v1/customers/by-identity"): "agent",
    ("GET", "/api/v1/customers/links"): "agent",
    ("POST", "/api/v1/customers/links/{link_id}/undo"): "agent",
    ("GET", "/api/v1/customers/{customer_id}"): "agent",
    ("GET", "/api/v1/customers/{customer_id}/context"): "agent",
    ("POST", "/api/v1/customers/{customer_id}/erase"): "admin",
    ("POST", "/api/v1/customers/{customer_id}/link"): "agent",
    ("GET", "/api/v1/customers/{customer_id}/link-suggestions"): "agent",
    ("GET", "/api/v1/customers/{customer_id}/links"): "agent",
    ("DELETE", "/api/v1/customers/{customer_id}/tags"): "agent",
    ("POST", "/api/v1/customers/{customer_id}/tags"): "agent",
    ("PUT", "/api/v1/customers/{customer_id}/tickets/{external_id}"): "admin",
    ("PUT", "/api/v1/customers/{customer_id}/transactions/{external_id}"): "admin",
    # Events: filtered per user.
    ("GET", "/api/v1/events"): "agent",
    # Business hours: configuration (admins), read by everyone.
    ("DELETE", "/api/v1/hours/{team}"): "admin",
    ("GET", "/api/v1/hours/{team}"): "agent",
    ("PUT", "/api/v1/hours/{team}"): "admin",
    ("GET", "/api/v1/hours/{team}/check"): "agent",
    ("POST", "/api/v1/hours/{team}/days"): "admin",
    ("GET", "/api/v1/hours/{team}/holidays"): "agent",
    ("POST", "/api/v1/hours/{team}/holidays"): "admin",
    ("POST", "/api/v1/hours/{team}/holidays/import"): "admin",
    ("DELETE", "/api/v1/hours/{team}/holidays/{day}"): "admin",
    ("PUT", "/api/v1/hours/{team}/message"): "admin",
    # Background jobs: operators (admins).
    ("GET", "/api/v1/jobs"): "admin",
    ("GET", "/api/v1/jobs/{job_id}"): "admin",
    ("POST", "/api/v1/jobs/{job_id}/retry"): "admin",
    # The caller.
    ("GET", "/api/v1/me"): "agent",
    ("PUT", "/api/v1/me/presence"): "agent",
    # Media: visibility rule; retention clean-up is admin-only.
    ("POST", "/api/v1/media/cleanup"): "admin",
    ("GET", "/api/v1/media/{media_id}"): "agent",
    # Notifications: one's own.
    ("GET", "/api/v1/notifications"): "agent",
    ("POST", "/api/v1/notifications/read-all"): "agent",
    ("POST", "/api/v1/notifications/{notification_id}/read"): "agent",
    # Rate-limit blocks: supervisors and admins.
    ("GET", "/api/v1/rate-limits/blocks"): "supervisor",
    ("POST", "/api/v1/rate-limits/blocks/{customer_id}/unblock"): "supervisor",
    # Routing rules: configuration (admins); supervisors read and test them.
    ("GET", "/api/v1/routing/rules"): "supervisor",
    ("POST", "/api/v1/routing/rules"): "admin",
    ("POST", "/api/v1/routing/rules/test"): "supervisor",
    ("DELETE", "/api/v1/routing/rules/{rule_id}"): "admin",
    ("POST", "/api/v1/routing/rules/{rule_id}/move"): "admin",
    # Skills: configuration (admins, under users), read by everyone.
    ("GET", "/api/v1/skills"): "agent",
    # SLA policies and targets: configuration (admins); reports need supervisor or more.
    ("GET", "/api/v1/sla/policies"): "agent",
    ("PUT", "/api/v1/sla/policies"): "admin",
    ("DELETE", "/api/v1/sla/policies/{team}/{priority}"): "admin",
    ("GET", "/api/v1/sla/report"): "supervisor",
    ("GET", "/api/v1/sla/targets"): "agent",
    ("PUT", "/api/v1/sla/targets"): "admin",
    ("GET", "/api/v1/sla/violations"): "supervisor",
    # Teams: configuration (admins), read by everyone.
    ("GET", "/api/v1/teams"): "agent",
    ("POST", "/api/v1/teams"): "admin",
    ("GET", "/api/v1/teams/{team}"): "agent",
    ("PATCH", "/api/v1/teams/{team}"): "admin",
    ("DELETE", "/api/v1/teams/{team}/members/{user}"): "admin",
    ("PUT", "/api/v1/teams/{team}/members/{user}"): "admin",
    # Tokens: one's own (admins: anyone's).
    ("DELETE", "/api/v1/tokens/{token_id}"): "agent",
    # Users: configuration (admins); anyone lists colleagues and manages their own tokens
    # (checked per user).
    ("GET", "/api/v1/users"): "agent",
    ("POST", "/api/v1/users"): "admin",
    ("GET", "/api/v1/users/{user}"): "agent",
    ("PATCH", "/api/v1/users/{user}"): "admin",
    ("PUT", "/api/v1/users/{user}/skills"): "admin",
    ("DELETE", "/api/v1/users/{user}/skills/{skill}"): "admin",
    ("GET", "/api/v1/users/{user}/tokens"): "agent",
    ("POST", "/api/v1/users/{user}/tokens"): "agent",
    ("GET", "/api/v1/webhook-deliveries/{delivery_id}"): "admin",
    ("POST", "/api/v1/webhook-deliveries/{delivery_id}/redeliver"): "admin",
    # Outbound webhooks: configuration (admins), reads included (they show delivery payloads).
    ("GET", "/api/v1/webhooks"): "admin",
    ("POST", "/api/v1/webhooks"): "admin",
    ("DELETE", "/api/v1/webhooks/{subscription_id}"): "admin",
    ("GET", "/api/v1/webhooks/{subscription_id}"): "admin",
    ("PATCH", "/api/v1/webhooks/{subscription_id}"): "admin",
    ("GET", "/api/v1/webhooks/{subscription_id}/deliveries"): "admin",
    ("POST", "/api/v1/webhooks/{subscription_id}/disable"): "admin",
    ("POST", "/api/v1/webhooks/{subscription_id}/enable"): "admin",
    ("POST", "/api/v1/webhooks/{subscription_id}/rotate-secret"): "admin",
    ("POST", "/api/v1/webhooks/{subscription_id}/test"): "admin",
    # WhatsApp templates: configuration (admins); agents read and send approved ones.
    ("DELETE", "/api/v1/whatsapp-templates"): "admin",
    ("GET", "/api/v1/whatsapp-templates"): "agent",
    ("POST", "/api/v1/whatsapp-templates"): "admin",
    ("POST", "/api/v1/whatsapp-templates/sync"): "admin",
    ("DELETE", "/api/v1/whatsapp-templates/{template_id}"): "admin",
    ("GET", "/api/v1/whatsapp-templates/{template_id}"): "agent",
    # Public: each with its own check (max_server.api.public.PUBLIC_ROUTES).
    ("POST", "/channels/chat-app/messages"): "public",
    ("GET", "/healthz"): "public",
    ("GET", "/media/{key:path}"): "public",
    ("GET", "/metrics"): "public",
    ("GET", "/readyz"): "public",
    ("GET", "/webhooks/whatsapp"): "public",
    ("POST", "/webhooks/whatsapp"): "public",
    ("POST", "/webhooks/whatsapp/template-status"): "public",
}
# Websocket routes authenticate the token themselves (tests/realtime); none other may appear.
WEBSOCKETS = {"/api/v1/events"}
