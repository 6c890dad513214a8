"""Meta's side of the sandbox (see ``sandbox.py``): error envelopes, the checks Meta applies to a
send, the in-memory template store, and signed webhooks posted to MAX."""

from __future__ import annotations

import base64
import re
import secrets
import threading
import time
from typing import Any

import httpx
from starlette.responses import JSONResponse

from max_server.channels.whatsapp import payloads

Json = dict[str, Any]
SEND_TYPES = {"text", "image", "audio", "video", "document", "sticker", "location", "contacts"}
SEND_TYPES |= {"interactive", "template", "reaction"}
CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")
_TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,512}$")


def meta_error(
    status: int, code: int, message: str, *, subcode: int | None = None, details: str | None = None
) -> JSONResponse:
    """Meta's error envelope."""
    err: Json = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        err["error_subcode"] = subcode
    if details is not None:
        err["error_data"] = {"messaging_product": "whatsapp", "details": details}
    err["fbtrace_id"] = "A" + secrets.token_urlsafe(15)
    return JSONResponse({"error": err}, status_code=status)


def no_object(method: str, object_id: str) -> JSONResponse:
    """Meta's answer for an id that does not exist (or is not this account's)."""
    return meta_error(
        400,
        100,
        f"Unsupported {method.lower()} request. Object with ID '{object_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation.",
        subcode=33,
    )


def new_id() -> str:
    """A numeric Graph id (16 digits)."""
    return str(secrets.randbelow(9 * 10**15) + 10**15)


def send_problem(body: Any) -> str | None:
    """What Meta would reject in a send body (a subset of its checks), or None."""
    if not isinstance(body, dict):
        return "Invalid parameter: the body must be a JSON object"
    if body.get("messaging_product") != "whatsapp":
        return "The parameter messaging_product is required."
    to = body.get("to")
    if not isinstance(to, str) or not re.search(r"\d", to):
        return "The parameter to is required."
    kind = body.get("type", "text")
    if kind not in SEND_TYPES:
        return f"Param type must be one of {sorted(SEND_TYPES)}"
    obj = body.get(kind)
    if not isinstance(obj, list if kind == "contacts" else dict):
        return f"The parameter {kind} is required."
    if kind == "text":
        text = obj.get("body") if isinstance(obj, dict) else None
        if not isinstance(text, str) or not text:
            return "The parameter text['body'] is required."
        if len(text) > 4096:
            return "Param text['body'] must be at most 4096 characters long."
    if kind == "template" and isinstance(obj, dict):
        language = obj.get("language")
        if not obj.get("name") or not isinstance(language, dict) or not language.get("code"):
            return "Param template['name'] and template['language']['code'] are required."
    return None


class TemplateStore:
    """Message templates of one WABA, kept in memory; create, list and delete answer as Meta does."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, Json] = {}

    def all(self) -> list[Json]:
        with self._lock:
            return [dict(t) for t in self._items.values()]

    def set_status(self, template_id: str, status: str) -> bool:
        with self._lock:
            if template_id not in self._items:
                return False
            self._items[template_id]["status"] = status
            return True

    def create(self, body: Any) -> JSONResponse:
        if not isinstance(body, dict):
            return meta_error(400, 100, "(#100) Invalid parameter", details="The body must be a JSON object")
        name, language = body.get("name"), body.get("language")
        category = str(body.get("category") or "").upper()
        if not isinstance(name, str) or not _TEMPLATE_NAME.match(name):
            details = "name: at most 512 lowercase letters, digits and underscores"
            return meta_error(400, 100, "(#100) Invalid parameter", details=details)
        if not isinstance(language, str) or not language:
            return meta_error(400, 100, "(#100) The parameter language is required.")
        if category not in CATEGORIES:
            return meta_error(400, 100, f"(#100) Param category must be one of {', '.join(CATEGORIES)}")
        if not isinstance(body.get("components"), list) or not body["components"]:
            return meta_error(400, 100, "(#100) The parameter components is required.")
        with self._lock:
            if any(t["name"] == name and t["language"] == language for t in self._items.values()):
                details = f"Content in this language already exists: {name} ({language})"
                return meta_error(400, 100, "(#100) Invalid parameter", subcode=2388024, details=details)
            template_id = new_id()
            self._items[template_id] = {
                "name": name,
                "parameter_format": str(body.get("parameter_format") or "positional").upper(),
                "components": body["components"],
                "language": language,
                "status": "PENDING",
                "category": category,
                "id": template_id,
            }
        return JSONResponse({"id": template_id, "status": "PENDING", "category": category})

    def list(self, query: dict[str, str], url: str) -> JSONResponse:
        """One page (``limit``, ``after``; filters ``name`` and ``status``); ``url`` makes ``next``."""
        limit = max(int(query["limit"]), 1) if query.get("limit", "").isdigit() else 25
        offset = _cursor_offset(query.get("after"))
        with self._lock:
            items = [
                dict(t)
                for t in self._items.values()
                if (not query.get("name") or t["name"] == query["name"])
                and (not query.get("status") or t["status"] == query["status"].upper())
            ]
        page = items[offset : offset + limit]
        end = offset + len(page)
        paging: Json = {"cursors": {"before": _cursor(offset), "after": _cursor(end)}}
        if end < len(items):
            paging["next"] = f"{url}?limit={limit}&after={_cursor(end)}"
        return JSONResponse({"data": page, "paging": paging})

    def delete(self, query: dict[str, str]) -> JSONResponse:
        """By ``name`` (every language), or only the one whose id is ``hsm_id``."""
        name, hsm_id = query.get("name"), query.get("hsm_id")
        if not name:
            return meta_error(400, 100, "(#100) The parameter name is required.")
        with self._lock:
            doomed = [i for i, t in self._items.items() if t["name"] == name and (not hsm_id or i == hsm_id)]
            for template_id in doomed:
                del self._items[template_id]
        if not doomed:
            details = f"Message template {name} not found"
            return meta_error(400, 100, "(#100) Invalid parameter", details=details)
        return JSONResponse({"success": True})


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def _cursor_offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return max(int(base64.urlsafe_b64decode(cursor.encode())), 0)
    except ValueError:  # also binascii.Error
        return 0


class MetaWebhooks:
    """Posts signed webhooks to MAX as Meta would, for one business number (mixed into Sandbox)."""

    app_secret: str
    phone_number_id: str
    waba_id: str
    template_store: TemplateStore

    def add_media(self, data: bytes, mime_type: str, media_id: str | None = None) -> str:
        raise NotImplementedError

    def callback_data_of(self, wamid: str) -> str | None:
        raise NotImplementedError

    def post_webhook(
        self, target_url: str, payload: Json, path: str = "/webhooks/whatsapp", timeout: float = 30.0
    ) -> httpx.Response:
        """POSTs ``payload`` to MAX (its base URL) as Meta would: the exact bytes that were signed."""
        raw = payloads.encode(payload)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "facebookexternalua",
            "X-Hub-Signature-256": payloads.sign(raw, self.app_secret),
            "X-Hub-Signature": payloads.sign_sha1(raw, self.app_secret),
        }
        with httpx.Client(timeout=timeout) as client:
            return client.post(target_url.rstrip("/") + path, content=raw, headers=headers)

    def customer_text(
        self,
        target_url: str,
        wa_id: str,
        text: str,
        name: str = "Cliente",
        wamid: str | None = None,
        ts: float | None = None,
    ) -> tuple[httpx.Response, str]:
        """A customer writes ``text``; returns MAX's answer and the message's wamid."""
        wamid = wamid or payloads.new_wamid()
        message = payloads.text(wa_id, wamid, text, ts)
        change = payloads.messages_change(self.phone_number_id, [message], [payloads.contact(wa_id, name)])
        return self.post_webhook(target_url, self._envelope(change)), wamid

    def customer_media(
        self,
        target_url: str,
        wa_id: str,
        data: bytes,
        mime_type: str,
        kind: str | None = None,
        caption: str | None = None,
        filename: str | None = None,
        voice: bool | None = None,
        name: str = "Cliente",
        wamid: str | None = None,
        ts: float | None = None,
    ) -> tuple[httpx.Response, str, str]:
        """A customer sends a file (registered with ``add_media``); returns MAX's answer, the wamid
        and the media id. ``kind`` defaults from the MIME type (image/webp is a sticker)."""
        if kind is None:
            major = mime_type.split("/", 1)[0]
            kind = "sticker" if mime_type == "image/webp" else major
            kind = kind if kind in ("image", "video", "audio", "sticker") else "document"
        if kind == "document" and filename is None:
            filename = "file"
        media_id = self.add_media(data, mime_type)
        wamid = wamid or payloads.new_wamid()
        sha256 = payloads.sha256_b64(data)
        message = payloads.media_message(
            kind, wa_id, wamid, media_id, mime_type, sha256, ts, caption, filename, voice
        )
        change = payloads.messages_change(self.phone_number_id, [message], [payloads.contact(wa_id, name)])
        return self.post_webhook(target_url, self._envelope(change)), wamid, media_id

    def status_update(
        self,
        target_url: str,
        wamid: str,
        status: str,
        recipient_id: str,
        errors: list[Json] | None = None,
        ts: float | None = None,
        callback_data: str | None = None,
    ) -> httpx.Response:
        """Meta reports a delivery status (sent, delivered, read, failed) of an outbound message,
        echoing the ``biz_opaque_callback_data`` its send carried (or ``callback_data``)."""
        echoed = callback_data if callback_data is not None else self.callback_data_of(wamid)
        item = payloads.status(wamid, status, recipient_id, ts, errors, biz_opaque_callback_data=echoed)
        change = payloads.statuses_change(self.phone_number_id, [item])
        return self.post_webhook(target_url, self._envelope(change))

    def template_status(
        self,
        target_url: str,
        event: str,
        template_id: int | str,
        name: str,
        language: str,
        reason: str | None = "NONE",
        category: str | None = None,
        **extra: Any,
    ) -> httpx.Response:
        """Meta reports a template's review outcome; a template stored here takes the new status."""
        self.template_store.set_status(str(template_id), event)
        change = payloads.template_status_change(
            event, int(template_id), name, language, reason, category, **extra
        )
        return self.post_webhook(target_url, self._envelope(change, entry_time=int(time.time())))

    def _envelope(self, change: Json, entry_time: int | None = None) -> Json:
        return payloads.envelope(self.phone_number_id, [change], self.waba_id, entry_time=entry_time)
