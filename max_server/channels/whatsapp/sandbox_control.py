"""The sandbox's control API (loopback only), for people trying MAX with ``max sandbox run``.

Each endpoint plays one part of Meta against a MAX server named by ``to_url`` (its base URL):

- ``POST /_sandbox/customer-message`` ``{to_url, from, text, name?}``: a customer writes.
- ``POST /_sandbox/status`` ``{to_url, status, wamid?, error_code?, error_title?}``: Meta reports
  the delivery status (``sent``, ``delivered``, ``read``, ``played``, ``failed``) of a message MAX
  sent here; without ``wamid``, of the latest one.
- ``POST /_sandbox/template-status`` ``{to_url, event, template_id? | name + language, reason?}``:
  Meta's review of a template MAX submitted here (``APPROVED``, ``REJECTED``, ...).
- ``GET /_sandbox/sent``: the sends accepted so far (wamid, to, type, text), oldest first.
- ``GET /_sandbox/requests``: every Graph API request received (the token redacted).

Errors answer ``{"error": {"code", "message"}}``: 400 for a bad body, 404 for an unknown
message or template, 502 when MAX cannot be reached.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from max_server.channels.whatsapp import payloads

if TYPE_CHECKING:
    from max_server.channels.whatsapp.sandbox import Sandbox

Json = dict[str, Any]
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
STATUSES = ("sent", "delivered", "read", "played", "failed")
TEMPLATE_EVENTS = ("APPROVED", "REJECTED", "PAUSED", "DISABLED", "FLAGGED", "REINSTATED", "PENDING_DELETION")


def routes(sandbox: Sandbox) -> list[Route]:
    def guarded(handler: Callable[[Sandbox, Request], Awaitable[Response]]) -> Any:
        async def endpoint(request: Request) -> Response:
            if request.client is None or request.client.host not in LOOPBACK:
                return _error(403, "forbidden", "loopback only")
            return await handler(sandbox, request)

        return endpoint

    return [
        Route("/_sandbox/customer-message", guarded(_customer_message), methods=["POST"]),
        Route("/_sandbox/status", guarded(_status), methods=["POST"]),
        Route("/_sandbox/template-status", guarded(_template_status), methods=["POST"]),
        Route("/_sandbox/sent", guarded(_sent), methods=["GET"]),
        Route("/_sandbox/requests", guarded(_requests), methods=["GET"]),
    ]


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def _body(request: Request) -> Json | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("to_url"), str) or not body["to_url"]:
        return None
    return body


async def _deliver(call: Callable[[], httpx.Response], **answer: Any) -> Response:
    """Posts the webhook to MAX and reports MAX's answer."""
    try:
        response = await run_in_threadpool(call)
    except httpx.HTTPError as exc:
        return _error(502, "unreachable", f"{type(exc).__name__}: {exc}")
    return JSONResponse({**answer, "status": response.status_code, "response": response.text[:2000]})


async def _customer_message(sandbox: Sandbox, request: Request) -> Response:
    body = await _body(request)
    if body is None or not all(isinstance(body.get(k), str) and body[k] for k in ("from", "text")):
        message = "send JSON with to_url (MAX's base URL), from (wa_id), text and optionally name"
        return _error(400, "validation_error", message)
    wamid = payloads.new_wamid()
    name = str(body.get("name") or "Cliente")
    return await _deliver(
        lambda: sandbox.customer_text(body["to_url"], body["from"], body["text"], name, wamid=wamid)[0],
        wamid=wamid,
    )


async def _status(sandbox: Sandbox, request: Request) -> Response:
    body = await _body(request)
    if body is None or body.get("status") not in STATUSES:
        message = f"send JSON with to_url (MAX's base URL), status ({', '.join(STATUSES)}), optionally wamid"
        return _error(400, "validation_error", message)
    accepted = sandbox.accepted()
    wanted = body.get("wamid")
    found = [(w, sent) for w, sent in accepted if w == wanted] if wanted else accepted[-1:]
    if not found:
        what = f"no message {wanted} was sent here" if wanted else "MAX has sent no message here yet"
        return _error(404, "not_found", what)
    wamid, sent = found[-1]
    errors = None
    if body["status"] == "failed":
        code = body.get("error_code", 131026)
        if not isinstance(code, int):
            return _error(400, "validation_error", "error_code must be an integer (Meta's error code)")
        errors = [payloads.error(code, str(body.get("error_title") or "Message undeliverable"))]
    recipient = "".join(ch for ch in str(sent.get("to", "")) if ch.isdigit())
    return await _deliver(
        lambda: sandbox.status_update(body["to_url"], wamid, body["status"], recipient, errors),
        wamid=wamid,
    )


async def _template_status(sandbox: Sandbox, request: Request) -> Response:
    body = await _body(request)
    event = str(body.get("event") or "").upper() if body is not None else ""
    if body is None or event not in TEMPLATE_EVENTS:
        message = (
            f"send JSON with to_url (MAX's base URL), event ({', '.join(TEMPLATE_EVENTS)}), and "
            "template_id or name and language"
        )
        return _error(400, "validation_error", message)
    templates = sandbox.templates()
    if body.get("template_id"):
        found = [t for t in templates if t["id"] == str(body["template_id"])]
    else:
        wanted = (body.get("name"), body.get("language"))
        found = [t for t in templates if (t["name"], t["language"]) == wanted]
    if not found:
        return _error(404, "not_found", "no such template was created here (see max templates list)")
    template = found[0]
    reason = body.get("reason") or ("INVALID_FORMAT" if event == "REJECTED" else "NONE")
    return await _deliver(
        lambda: sandbox.template_status(
            body["to_url"], event, template["id"], template["name"], template["language"], str(reason)
        ),
        template_id=template["id"],
        event=event,
    )


async def _sent(sandbox: Sandbox, request: Request) -> Response:
    shown = []
    for wamid, body in sandbox.accepted():
        kind = body.get("type", "text")
        text = body.get("text", {}).get("body") if kind == "text" else None
        shown.append({"wamid": wamid, "to": body.get("to"), "type": kind, "text": text})
    return JSONResponse(shown)


async def _requests(sandbox: Sandbox, request: Request) -> Response:
    shown = []
    for recorded in sandbox.requests:
        item = asdict(recorded)
        item["body"] = recorded.body.decode("utf-8", "replace")
        if "authorization" in item["headers"]:
            item["headers"]["authorization"] = "Bearer [redacted]"
        shown.append(item)
    return JSONResponse(shown)
