"""One attempt of an outbound webhook: what it needs (read in one query), the signed headers,
and the POST of the stored bytes through the address guard. Recording the outcome is
``webhook_delivery``'s."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import httpx
from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session

from max_server import __version__, httpclients, netguard
from max_server.domain.signatures import hex_signature, signature_header
from max_server.models import WebhookDelivery, WebhookSubscription
from max_server.settings import Settings

MAX_RETRY_AFTER = 36000
RESPONSE_LIMIT = 1000
_D = WebhookDelivery.__table__  # type: ignore[attr-defined]
_S = WebhookSubscription.__table__  # type: ignore[attr-defined]


def classify(status_code: int | None) -> str:
    """``success``, ``gone`` (410: disable), ``retry`` or ``stop`` for an answer (None: no answer).
    DESIGN §6 retries 408, 429, 5xx and timeouts only. A redirect stops too: redirects are never
    followed (the address guard checked this URL, not the next), so asking again cannot help."""
    if status_code is None:
        return "retry"
    if 200 <= status_code < 300:
        return "success"
    if status_code == 410:
        return "gone"
    if status_code in (408, 429) or status_code >= 500:
        return "retry"
    return "stop"


def _answer_error(response: httpx.Response) -> str | None:
    """What the attempt log says beside the status code, when the code alone is not the story."""
    if 300 <= response.status_code < 400:
        where = response.headers.get("location", "")[:300] or "nowhere"
        return (
            f"HTTP {response.status_code}: redirects are not followed (to {where}); subscribe the final URL"
        )
    return None


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    response_body: str | None
    error: str | None
    duration_ms: int
    outcome: str  # success | gone | retry | stop
    retry_after: int | None = None


class _Unresolvable(Exception):
    """DNS did not answer: worth retrying (unlike a refused address)."""


def _resolving(resolver: netguard.Resolver) -> netguard.Resolver:
    def resolve(host: str, port: int) -> list[str]:
        try:
            return resolver(host, port)
        except OSError as exc:
            raise _Unresolvable(f"cannot resolve {host}: {exc.strerror or exc}") from None

    return resolve


def transport_for(target: netguard.Target) -> httpx.HTTPTransport:
    """The connection pool for a checked target: one per host name over https (see
    ``netguard.stream_via``), one for every plain http receiver."""
    name = target.server_name if target.url.startswith("https:") else ""
    return httpclients.shared(
        ("webhooks", name),
        lambda: httpx.HTTPTransport(limits=httpx.Limits(max_connections=200, max_keepalive_connections=50)),
    )


USER_AGENT = f"MAX-Webhooks/{__version__}"


@dataclass(frozen=True)
class Outgoing:
    """What one attempt needs: the delivery and its subscription, read in one query."""

    delivery_id: int
    subscription_id: int
    event_type: str
    message_id: str
    body: str
    state: str
    attempts: int
    url: str
    secret: str
    previous_secret: str | None
    previous_secret_until: datetime | None
    is_active: bool
    timeout_s: int
    failing_since: datetime | None


_OUTGOING = sa_select(
    _D.c.id.label("delivery_id"),
    _D.c.subscription_id,
    _D.c.event_type,
    _D.c.message_id,
    _D.c.body,
    _D.c.state,
    _D.c.attempts,
    _S.c.url,
    _S.c.secret,
    _S.c.previous_secret,
    _S.c.previous_secret_until,
    _S.c.is_active,
    _S.c.timeout_s,
    _S.c.failing_since,
).join(_S, _S.c.id == _D.c.subscription_id)
_LOAD_MANY = _OUTGOING.where(_D.c.id.in_(bindparam("ids", expanding=True)))


def load_many(session: Session, delivery_ids: list[int]) -> dict[int, Outgoing]:
    """What the attempts of a batch need, in one query (a deleted delivery is missing)."""
    rows = session.connection().execute(_LOAD_MANY, {"ids": delivery_ids})
    return {row.delivery_id: Outgoing(**row._mapping) for row in rows}


def signed_headers(outgoing: Outgoing, body: bytes, now: datetime) -> dict[str, str]:
    timestamp = int(now.timestamp())
    keys = [outgoing.secret]
    until = outgoing.previous_secret_until
    if outgoing.previous_secret and until is not None and until > now:
        keys.append(outgoing.previous_secret)  # during a rotation both secrets sign
    return {
        "User-Agent": USER_AGENT,
        "Content-Type": "application/json",
        "webhook-id": outgoing.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(keys, outgoing.message_id, timestamp, body),
        "X-MAX-Event": outgoing.event_type,
        "X-MAX-Signature": hex_signature(outgoing.secret, body),
    }


# What the address guard said about each URL of a batch (a Target, or the refusal to repeat).
Checks = dict[str, "netguard.Target | Exception"]


def _checked(url: str, settings: Settings, resolver: netguard.Resolver, checks: Checks) -> netguard.Target:
    """The guard's answer for ``url``, asked once per batch: the deliveries of one batch go out
    within moments, each to the address that was checked (a new batch asks again, so a changed
    DNS answer is seen, and checked, as soon as the next batch)."""
    found = checks.get(url)
    if found is None:
        try:
            found = netguard.check(
                url, allow_private=settings.webhooks.allow_private_networks, resolver=_resolving(resolver)
            )
        except (netguard.AddressRefused, _Unresolvable) as exc:
            found = exc
        checks[url] = found
    if isinstance(found, Exception):
        raise found
    return found


def post(
    outgoing: Outgoing,
    now: datetime,
    settings: Settings,
    resolver: netguard.Resolver = netguard.system_resolver,
    checks: Checks | None = None,
) -> AttemptResult:
    """One POST of the stored bytes through the address guard (the checked address, no redirects).
    ``checks`` shares the guard's answers across the attempts of one batch."""
    body = outgoing.body.encode("utf-8")
    started = time.perf_counter()

    def done(
        status: int | None, text: str | None, error: str | None, outcome: str, after: int | None = None
    ) -> AttemptResult:
        ms = round((time.perf_counter() - started) * 1000)
        return AttemptResult(status, text, error, ms, outcome, after)

    try:
        target = _checked(outgoing.url, settings, resolver, {} if checks is None else checks)
        with netguard.stream_via(
            transport_for(target),
            "POST",
            target,
            content=body,
            headers=signed_headers(outgoing, body, now),
            timeout=float(outgoing.timeout_s),
        ) as response:
            text = _read_prefix(response)
            return done(
                response.status_code,
                text,
                _answer_error(response),
                classify(response.status_code),
                _retry_after(response),
            )
    except netguard.AddressRefused as exc:
        return done(None, None, f"address refused: {exc}", "stop")
    except _Unresolvable as exc:
        return done(None, None, str(exc), "retry")
    except httpx.TimeoutException:
        return done(None, None, f"no answer within {outgoing.timeout_s}s", "retry")
    except httpx.HTTPError as exc:
        return done(None, None, f"{type(exc).__name__}: {exc}"[:500], "retry")


def _read_prefix(response: httpx.Response) -> str | None:
    """The first 1000 characters of the answer (reading at most a few KB of it)."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= RESPONSE_LIMIT * 4:
                break
    except httpx.HTTPError:
        pass  # the status is what counts; a body cut short is still logged as far as it came
    text = b"".join(chunks).decode("utf-8", "replace")[:RESPONSE_LIMIT]
    return text or None


def _retry_after(response: httpx.Response) -> int | None:
    value = response.headers.get("retry-after", "").strip()
    return min(int(value), MAX_RETRY_AFTER) if value.isdecimal() else None
