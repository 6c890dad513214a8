"""Reading request bodies with a size limit, before anything else looks at them."""

from __future__ import annotations

import logging

from fastapi import Request
from starlette.requests import ClientDisconnect

from max_server.errors import AppError, PayloadTooLarge

log = logging.getLogger("max.api")


class ClientDisconnected(AppError):
    """The client went away before its body was whole: nothing was stored, and nobody reads the
    answer. 499 is nginx's "client closed request": it is what the access log and metrics show."""

    status_code = 499
    code = "client_disconnected"


async def read_limited(request: Request, limit: int) -> bytes:
    """The raw body, or 413 as soon as it is known to exceed ``limit`` (never read whole)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdecimal() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes", details={"limit": limit})
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"the body is larger than {limit} bytes", details={"limit": limit})
            chunks.append(chunk)
    except ClientDisconnect:
        # A sender that gives up mid-body (a timeout, a load balancer cut) is routine, not a bug:
        # one line, no traceback. Meta retries what it did not see acknowledged.
        log.info(
            "%s %s: the client disconnected after %d of %s bytes; nothing stored",
            request.method,
            request.url.path,
            size,
            declared or "?",
        )
        raise ClientDisconnected("the client disconnected before the body was complete") from None
    return b"".join(chunks)
