"""The explicit allow-list of routes that need no API token, each with its own check."""

from __future__ import annotations

# (method, path) -> the check that guards it instead of a token.
PUBLIC_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "none: liveness only, reveals nothing",
    ("GET", "/readyz"): "none: readiness only, reveals nothing",
}
