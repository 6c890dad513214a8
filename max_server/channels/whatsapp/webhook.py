"""Meta's webhook: signature over the raw bytes, and a parser that never loses anything.

``parse`` turns a decoded body into typed items. It never raises on odd shapes: a piece it
cannot understand becomes an :class:`Unknown` item, which the ingest stores as it came.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
MAX_DEPTH = 64  # Meta's bodies nest about eight levels deep
# The widths of the columns these values are stored in (or looked up by): a value that does not
# fit is not Meta's, and its item is kept as Unknown instead of failing the whole webhook.
LIMITS = {
    "wamid": 255,
    "sender": 128,
    "type": 64,
    "phone_number_id": 64,
    "media": 255,
    "sha256": 128,
    "status": 16,
    "template_value": 32,
}
TEMPLATE_FIELDS = (
    "message_template_status_update",
    "message_template_quality_update",
    "template_category_update",
    "message_template_components_update",
)


def decode(raw: bytes) -> Any:
    """The body as JSON; ``ValueError`` for what is not JSON, for NaN and Infinity (not JSON, and
    PostgreSQL refuses them), and for bodies nested deeper than ``MAX_DEPTH``."""
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("the body is nested too deeply") from None
    if _deeper_than(body, MAX_DEPTH):
        raise ValueError(f"the body is nested more than {MAX_DEPTH} levels deep")
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _deeper_than(body: Any, limit: int) -> bool:
    """Whether more than ``limit`` containers nest inside each other (``[]`` is one level);
    measured level by level, without recursion, so any depth is measured safely."""
    level, depth = [body], 0
    while level:
        containers = [node for node in level if isinstance(node, dict | list)]
        if not containers:
            return False
        depth += 1
        if depth > limit:
            return True
        level = [
            child for node in containers for child in (node.values() if isinstance(node, dict) else node)
        ]
    return False


def signature_valid(raw: bytes, header: str | None, app_secret: str) -> bool:
    """``X-Hub-Signature-256: sha256=<hex>`` over the exact bytes received, in constant time."""
    if not header or not app_secret:
        return False
    expected = "sha256=" + hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().lower().encode())


@dataclass
class Account:
    phone_number_id: str
    display_phone_number: str | None
    waba_id: str | None


@dataclass
class Media:
    id: str | None
    mime_type: str | None
    sha256: str | None
    filename: str | None
    caption: str | None
    url: str | None
    voice: bool = False
    animated: bool = False


@dataclass
class InboundMessage:
    account: Account
    wamid: str
    type: str
    timestamp: datetime | None
    wa_id: str | None
    user_id: str | None
    profile_name: str | None
    text: str | None
    raw: dict[str, Any]
    media: Media | None = None
    reply_to: str | None = None
    flags: list[str] = field(default_factory=list)
    new_wa_id: str | None = None  # system: user_changed_number


@dataclass
class StatusUpdate:
    account: Account
    wamid: str
    status: str
    timestamp: datetime | None
    recipient_id: str | None
    errors: list[dict[str, Any]]
    raw: dict[str, Any]
    callback_data: str | None = None  # our biz_opaque_callback_data, echoed by Meta


@dataclass
class TemplateUpdate:
    field: str
    value: dict[str, Any]


@dataclass
class Unknown:
    """Anything else: kept verbatim with why it was not understood."""

    kind: str
    payload: dict[str, Any]


Item = InboundMessage | StatusUpdate | TemplateUpdate | Unknown


def parse(body: Any) -> list[Item]:
    items: list[Item] = []
    if not isinstance(body, dict) or not isinstance(body.get("entry"), list):
        return [Unknown("unrecognised_body", {"body": body})]
    for entry in body["entry"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("changes"), list):
            items.append(Unknown("unrecognised_entry", {"entry": entry}))
            continue
        waba_id = _str(entry.get("id"))
        for change in entry["changes"]:
            items += _change(change, waba_id)
    return items


def _change(change: Any, waba_id: str | None) -> list[Item]:
    if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
        return [Unknown("unrecognised_change", {"change": change, "waba_id": waba_id})]
    field_name, value = _str(change.get("field")) or "", change["value"]
    if field_name in TEMPLATE_FIELDS:
        if not _template_fits(value):
            return [Unknown(f"{field_name}:oversized", {"value": value, "waba_id": waba_id})]
        return [TemplateUpdate(field_name, {**value, "waba_id": waba_id})]
    if field_name != "messages":
        return [Unknown(f"field:{field_name or 'missing'}"[:64], {"value": value, "waba_id": waba_id})]
    metadata = _dict(value.get("metadata"))
    phone_number_id = _str(metadata.get("phone_number_id"))
    if not phone_number_id or len(phone_number_id) > LIMITS["phone_number_id"]:
        return [Unknown("messages_without_phone_number_id", {"value": value, "waba_id": waba_id})]
    display = _str(metadata.get("display_phone_number"))
    account = Account(
        phone_number_id,
        display if display and len(display) <= 32 else None,
        waba_id if waba_id and len(waba_id) <= LIMITS["phone_number_id"] else None,
    )
    contacts = _contacts(value.get("contacts"))
    items: list[Item] = []
    for message in _list(value.get("messages")):
        items.append(_message(message, account, contacts))
    for status in _list(value.get("statuses")):
        items.append(_status(status, account))
    if value.get("errors"):
        items.append(Unknown("errors", {"errors": value["errors"], "phone_number_id": phone_number_id}))
    return items


def _template_fits(value: dict[str, Any]) -> bool:
    """Template status, category and quality values are short words; ids are numbers."""
    words = ("event", "message_template_category", "new_category", "new_quality_score")
    if any(len(str(value.get(key) or "")) > LIMITS["template_value"] for key in words):
        return False
    return len(str(value.get("message_template_id") or "")) <= LIMITS["phone_number_id"]


def _too_long(limit: str, *values: str | None) -> bool:
    return any(value is not None and len(value) > LIMITS[limit] for value in values)


def _contacts(raw: Any) -> dict[str, dict[str, Any]]:
    """Contacts by every key a message may point at them with (wa_id or user_id)."""
    found: dict[str, dict[str, Any]] = {}
    for contact in _list(raw):
        if not isinstance(contact, dict):
            continue
        for key in (contact.get("wa_id"), contact.get("user_id")):
            if isinstance(key, str) and key:
                found[key] = contact
    return found


def _message(message: Any, account: Account, contacts: dict[str, dict[str, Any]]) -> Item:
    if not isinstance(message, dict) or not _str(message.get("id")):
        return Unknown("message_without_id", {"message": message, "phone_number_id": account.phone_number_id})
    sender = _str(message.get("from")) or _str(message.get("from_user_id"))
    contact = contacts.get(sender or "") or (next(iter(contacts.values())) if len(contacts) == 1 else {})
    wa_id = _str(message.get("from")) or _str(contact.get("wa_id"))
    user_id = _str(message.get("from_user_id")) or _str(contact.get("user_id"))
    if not wa_id and not user_id:
        return Unknown(
            "message_without_sender", {"message": message, "phone_number_id": account.phone_number_id}
        )
    profile = _dict(contact.get("profile"))
    type_ = _str(message.get("type")) or "unknown"
    body = _dict(message.get(type_))
    parsed = InboundMessage(
        account=account,
        wamid=str(message["id"]),
        type=type_,
        timestamp=_time(message.get("timestamp")),
        wa_id=wa_id,
        user_id=user_id,
        profile_name=_str(profile.get("name")),
        text=_text_of(type_, message, body),
        raw=message,
    )
    context = _dict(message.get("context"))
    parsed.reply_to = _str(context.get("id"))
    if context.get("forwarded"):
        parsed.flags.append("forwarded")
    if context.get("frequently_forwarded"):
        parsed.flags += ["forwarded", "frequently_forwarded"]
    if message.get("referral"):
        parsed.flags.append("referral")
    if type_ in MEDIA_TYPES:
        parsed.media = Media(
            id=_str(body.get("id")),
            mime_type=_str(body.get("mime_type")),
            sha256=_str(body.get("sha256")),
            filename=_str(body.get("filename")),
            caption=_str(body.get("caption")),
            url=_str(body.get("url")),
            voice=bool(body.get("voice")),
            animated=bool(body.get("animated")),
        )
        if parsed.media.voice:
            parsed.flags.append("voice")
    if type_ == "reaction" and not _str(body.get("emoji")):
        parsed.flags.append("reaction_removed")
    if type_ == "system" and body.get("type") == "user_changed_number":
        # ``wa_id`` today; Meta's older payloads named the new number ``new_wa_id``.
        parsed.new_wa_id = _str(body.get("wa_id")) or _str(body.get("new_wa_id"))
    if message.get("errors"):
        parsed.flags.append("has_errors")
    media = parsed.media
    if (
        _too_long("wamid", parsed.wamid)
        or _too_long("sender", wa_id, user_id, parsed.new_wa_id)
        or _too_long("type", type_)
        or (
            media is not None
            and (_too_long("media", media.id, media.mime_type) or _too_long("sha256", media.sha256))
        )
    ):
        return Unknown("message_oversized", {"message": message, "phone_number_id": account.phone_number_id})
    if media is not None and media.filename:
        media.filename = media.filename[-LIMITS["media"] :]  # the end keeps the extension
    if parsed.profile_name:
        parsed.profile_name = parsed.profile_name[:200]
    return parsed


def _text_of(type_: str, message: dict[str, Any], body: dict[str, Any]) -> str | None:
    """What an agent should read in the thread for this message."""
    if type_ == "text":
        return _str(body.get("body"))
    if type_ in MEDIA_TYPES:
        return _str(body.get("caption"))
    if type_ == "interactive":
        for key in ("button_reply", "list_reply", "nfm_reply"):
            reply = body.get(key)
            if isinstance(reply, dict):
                return _str(reply.get("title")) or _str(reply.get("body")) or _str(reply.get("id"))
        return None
    if type_ == "button":
        return _str(body.get("text")) or _str(body.get("payload"))
    if type_ == "reaction":
        return _str(body.get("emoji")) or None
    if type_ == "location":
        parts = [_str(body.get(k)) for k in ("name", "address")]
        coords = f"{body.get('latitude')}, {body.get('longitude')}"
        return " · ".join(p for p in [*parts, coords] if p)
    if type_ == "contacts":
        names = []
        for card in _list(message.get("contacts")):
            name = card.get("name") if isinstance(card, dict) else None
            if isinstance(name, dict) and _str(name.get("formatted_name")):
                names.append(str(name["formatted_name"]))
        return ", ".join(names) or None
    if type_ == "system":
        return _str(body.get("body"))
    if type_ == "order":
        items = _list(body.get("product_items"))
        return f"Order: {len(items)} item(s)" + (f" — {body['text']}" if _str(body.get("text")) else "")
    if type_ == "unsupported":
        errors = _list(message.get("errors"))
        title = errors[0].get("title") if errors and isinstance(errors[0], dict) else None
        return _str(title) or "Unsupported message"
    return _str(body.get("body")) or _str(body.get("text"))


def _status(status: Any, account: Account) -> Item:
    if not isinstance(status, dict) or not _str(status.get("id")) or not _str(status.get("status")):
        return Unknown("status_without_id", {"status": status, "phone_number_id": account.phone_number_id})
    if _too_long("wamid", str(status["id"])) or _too_long("status", str(status["status"])):
        return Unknown("status_oversized", {"status": status, "phone_number_id": account.phone_number_id})
    errors = [e for e in _list(status.get("errors")) if isinstance(e, dict)]
    return StatusUpdate(
        account=account,
        wamid=str(status["id"]),
        status=str(status["status"]).lower(),
        timestamp=_time(status.get("timestamp")),
        recipient_id=_str(status.get("recipient_id")),
        errors=errors,
        raw=status,
        callback_data=_str(status.get("biz_opaque_callback_data")),
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _time(value: Any) -> datetime | None:
    try:
        seconds = int(str(value))
        return datetime.fromtimestamp(seconds, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
