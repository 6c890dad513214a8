"""The explicit allow-list of routes that need no API token, each with its own check."""

from __future__ import annotations

# (method, path) -> the check that guards it instead of a token.
PUBLIC_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "none: liveness only, reveals nothing",
    ("GET", "/readyz"): "none: readiness only, reveals nothing",
    ("GET", "/metrics"): "server.metrics_token as a bearer token when set (counts only, no data)",
    ("GET", "/webhooks/whatsapp"): "hub.verify_token compared in constant time (403 otherwise)",
    ("POST", "/webhooks/whatsapp"): "X-Hub-Signature-256 over the raw body with the app secret (401)",
    ("POST", "/webhooks/whatsapp/template-status"): "same as /webhooks/whatsapp (the seed's path)",
    ("POST", "/channels/chat-app/messages"): "Standard Webhooks signature with chat_app.secret (401)",
    ("GET", "/media/{key:path}"): "HMAC link (key, expiry, name, type) with server.secret_key (403)",
}

# Websocket routes cannot use the HTTP role guards; each authenticates its token itself
# (``Authorization`` header or ``token`` query parameter) and refuses the handshake with 401.
WEBSOCKET_ROUTES: dict[str, str] = {
    "/api/v1/events": "agent: token in the Authorization header or ?token=",
}
