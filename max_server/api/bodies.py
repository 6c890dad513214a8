"""Reading request bodies with a size limit, before anything else looks at them."""

from __future__ import annotations

from fastapi import Request

from max_server.errors import PayloadTooLarge


async def read_limited(request: Request, limit: int) -> bytes:
    """The raw body, or 413 as soon as it is known to exceed ``limit`` (never read whole)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdecimal() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes", details={"limit": limit})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes", details={"limit": limit})
        chunks.append(chunk)
    return b"".join(chunks)
