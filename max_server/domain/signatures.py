"""Signatures MAX makes and checks (pure functions).

* Standard Webhooks (outbound webhooks, the Chat App channel): ``webhook-signature`` is
  ``v1,`` + base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``, keyed with the base64-decoded part
  of a ``whsec_…`` secret; several space-separated signatures may be sent during a rotation.
* ``X-MAX-Signature``: hex HMAC-SHA256 of the body keyed with the secret string as shown (what
  the seed's receivers expect).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping

SECRET_PREFIX = "whsec_"  # noqa: S105  (a prefix, not a secret)
TOLERANCE_SECONDS = 300


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def key_bytes(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret (its base64 part, decoded); other strings as UTF-8."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except (binascii.Error, ValueError):
            pass
    return secret.encode("utf-8")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one ``v1,…`` per active secret, space-separated."""
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets_ if s)


def verify(
    secrets_: Iterable[str],
    headers: Mapping[str, str],
    body: bytes,
    now_ts: float,
    tolerance: int = TOLERANCE_SECONDS,
) -> str | None:
    """Checks Standard Webhooks headers. Returns None if valid, else the reason."""
    msg_id = headers.get("webhook-id", "")
    raw_ts = headers.get("webhook-timestamp", "")
    received = headers.get("webhook-signature", "")
    if not (msg_id and raw_ts and received):
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    try:
        timestamp = int(raw_ts)
    except ValueError:
        return "webhook-timestamp is not a number"
    if abs(now_ts - timestamp) > tolerance:
        return "webhook-timestamp is too old or in the future"
    offered = [part.partition(",")[2] for part in received.split() if part.startswith("v1,")]
    for secret in secrets_:
        if not secret:
            continue
        expected = sign(secret, msg_id, timestamp, body).partition(",")[2]
        if any(hmac.compare_digest(expected.encode(), candidate.encode()) for candidate in offered):
            return None
    return "signature mismatch"


def hex_signature(secret: str, body: bytes) -> str:
    """``X-MAX-Signature``: hex HMAC-SHA256 of the exact body bytes, keyed with the secret string."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
