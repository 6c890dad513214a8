"""Builders of WhatsApp Cloud API webhook bodies, shaped as Meta sends them (plain dicts).

Used by the sandbox, the tests and ``max demo`` to play the part of Meta. The shapes follow Meta's
webhook references (see ``reference/whatsapp-cloud-api.md``): timestamps are strings of Unix
seconds, template ids are integers, media ``sha256`` is base64. :func:`encode` escapes non-ASCII
as ``\\uXXXX`` as Meta does, and :func:`sign` signs those exact bytes.

Nothing here does I/O; only :func:`new_wamid` draws random bytes and timestamps default to now.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

DEFAULT_PHONE_NUMBER_ID = "1122334455667"
DEFAULT_WABA_ID = "1234567890987654321"
DEFAULT_DISPLAY_PHONE_NUMBER = "15550783881"

Json = dict[str, Any]
Ts = float | None  # Unix seconds; None means now
Ctx = Json | None  # a message's ``context`` (see :func:`context`)


def _some(**fields: Any) -> Json:
    """The fields that are not None, in order."""
    return {k: v for k, v in fields.items() if v is not None}


# Envelope and changes -------------------------------------------------------------------------
def envelope(
    phone_number_id: str,
    changes: list[Json],
    waba_id: str = DEFAULT_WABA_ID,
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER,
    entry_time: int | None = None,
) -> Json:
    """A whole webhook body with one entry (the WABA) carrying ``changes``.

    ``messages`` changes built without ``metadata`` get this phone number's; ``entry_time`` adds
    the entry's ``time`` (Meta sends it with template events).
    """
    filled = [
        {**c, "value": _value(phone_number_id, display_phone_number, **c["value"])}
        if c.get("field") == "messages" and "metadata" not in c.get("value", {})
        else c
        for c in changes
    ]
    entry = _some(id=waba_id, time=entry_time, changes=filled)
    return {"object": "whatsapp_business_account", "entry": [entry]}


def _value(phone_number_id: str, display_phone_number: str, **fields: Any) -> Json:
    """The value of a ``messages`` change: product, metadata, then ``fields`` (empty ones left out)."""
    metadata = {"display_phone_number": display_phone_number, "phone_number_id": phone_number_id}
    return {"messaging_product": "whatsapp", "metadata": metadata, **{k: v for k, v in fields.items() if v}}


def messages_change(
    phone_number_id: str,
    messages: list[Json],
    contacts: list[Json],
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER,
) -> Json:
    """A ``messages`` change with inbound messages; ``contacts`` is left out when empty (as Meta
    does for system messages)."""
    value = _value(phone_number_id, display_phone_number, contacts=contacts, messages=messages)
    return {"field": "messages", "value": value}


def statuses_change(
    phone_number_id: str,
    statuses: list[Json],
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER,
    contacts: list[Json] | None = None,
) -> Json:
    """A ``messages`` change carrying delivery statuses of outbound messages."""
    value = _value(phone_number_id, display_phone_number, contacts=contacts, statuses=statuses)
    return {"field": "messages", "value": value}


def errors_change(
    phone_number_id: str, errors: list[Json], display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER
) -> Json:
    """A ``messages`` change carrying errors not tied to one message (``value.errors[]``)."""
    return {"field": "messages", "value": _value(phone_number_id, display_phone_number, errors=errors)}


def template_status_change(
    event: str,
    template_id: int,
    name: str,
    language: str,
    reason: str | None = "NONE",
    category: str | None = None,
    **extra: Any,
) -> Json:
    """A ``message_template_status_update`` change; ``extra`` adds e.g. ``rejection_info``,
    ``other_info`` or ``disable_info``. ``reason=None`` is sent as null (scheduled deletion)."""
    value: Json = {"event": event, **_template(template_id, name, language), "reason": reason}
    value.update(_some(message_template_category=category), **extra)
    return {"field": "message_template_status_update", "value": value}


def template_quality_change(
    template_id: int, name: str, language: str, previous_score: str, new_score: str
) -> Json:
    """A ``message_template_quality_update`` change (scores GREEN, YELLOW, RED, UNKNOWN)."""
    scores = {"previous_quality_score": previous_score, "new_quality_score": new_score}
    value = {**scores, **_template(template_id, name, language)}
    return {"field": "message_template_quality_update", "value": value}


def template_category_change(
    template_id: int,
    name: str,
    language: str,
    new_category: str,
    previous_category: str | None = None,
    correct_category: str | None = None,
    category_update_timestamp: int | None = None,
) -> Json:
    """A ``template_category_update`` change: completed (with ``previous_category``) or pending
    (with ``correct_category`` and ``category_update_timestamp``)."""
    value = _template(template_id, name, language)
    value.update(
        _some(
            previous_category=previous_category,
            correct_category=correct_category,
            new_category=new_category,
            category_update_timestamp=category_update_timestamp,
        )
    )
    return {"field": "template_category_update", "value": value}


def _template(template_id: int, name: str, language: str) -> Json:
    # The template id is an integer in webhooks (a string in the management API).
    return {
        "message_template_id": int(template_id),
        "message_template_name": name,
        "message_template_language": language,
    }


def contact(wa_id: str | None, name: str | None, user_id: str | None = None) -> Json:
    """One ``contacts[]`` item: the sender's profile name, phone (``wa_id``) and business-scoped id."""
    return _some(profile=None if name is None else {"name": name}, wa_id=wa_id, user_id=user_id)


# Messages ---------------------------------------------------------------------------------------
def _timestamp(ts: float | None) -> str:
    return str(int(time.time() if ts is None else ts))


def _message(wa_id: str, wamid: str, ts: Ts, type_name: str, body: Any, context: Ctx = None) -> Json:
    message = _some(context=context, **{"from": wa_id}, id=wamid, timestamp=_timestamp(ts), type=type_name)
    return message | _some(**{type_name: body})


def context(
    reply_to: str | None = None,
    sender: str | None = None,
    *,
    forwarded: bool = False,
    frequently_forwarded: bool = False,
) -> Json:
    """A message's ``context``: a reply to ``reply_to`` (a wamid, sent by ``sender``), or a forward."""
    ctx: Json = {} if reply_to is None else {"from": sender or DEFAULT_DISPLAY_PHONE_NUMBER, "id": reply_to}
    if frequently_forwarded:
        ctx["frequently_forwarded"] = True
    elif forwarded:
        ctx["forwarded"] = True
    return ctx


def from_user(message: Json, user_id: str, *, hide_number: bool = False) -> Json:
    """A copy of ``message`` with the sender's business-scoped ``from_user_id`` (and, for a user
    who turned on usernames, without ``from``)."""
    copied = dict(message)
    copied["from_user_id"] = user_id
    if hide_number:
        copied.pop("from", None)
    return copied


def text(wa_id: str, wamid: str, body: str, ts: Ts = None, context: Ctx = None) -> Json:
    return _message(wa_id, wamid, ts, "text", {"body": body}, context)


def media_message(
    kind: str,
    wa_id: str,
    wamid: str,
    media_id: str,
    mime_type: str,
    sha256: str,
    ts: Ts = None,
    caption: str | None = None,
    filename: str | None = None,
    voice: bool | None = None,
    animated: bool | None = None,
    *,
    url: str | None = None,
    context: Ctx = None,
) -> Json:
    """An image, video, document, audio or sticker message; ``sha256`` is base64 as Meta sends it.

    Audio always carries ``voice`` and stickers ``animated`` (false unless given); ``url`` is the
    inline media URL Meta started adding in late 2025.
    """
    obj = _some(caption=caption, filename=filename, mime_type=mime_type, sha256=sha256, id=media_id)
    if kind == "audio" or voice is not None:
        obj["voice"] = bool(voice)
    if kind == "sticker" or animated is not None:
        obj["animated"] = bool(animated)
    obj.update(_some(url=url))
    return _message(wa_id, wamid, ts, kind, obj, context)


image = functools.partial(media_message, "image")
video = functools.partial(media_message, "video")
document = functools.partial(media_message, "document")
audio = functools.partial(media_message, "audio")
sticker = functools.partial(media_message, "sticker")


def location(
    wa_id: str,
    wamid: str,
    latitude: float,
    longitude: float,
    ts: Ts = None,
    name: str | None = None,
    address: str | None = None,
    url: str | None = None,
    context: Ctx = None,
) -> Json:
    obj = _some(latitude=latitude, longitude=longitude, name=name, address=address, url=url)
    return _message(wa_id, wamid, ts, "location", obj, context)


def contact_card(
    formatted_name: str,
    phone: str,
    phone_wa_id: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    phone_type: str = "CELL",
) -> Json:
    """One shared contact card for :func:`contacts_message`."""
    name = _some(first_name=first_name, last_name=last_name, formatted_name=formatted_name)
    return {"name": name, "phones": [_some(phone=phone, wa_id=phone_wa_id, type=phone_type)]}


def contacts_message(wa_id: str, wamid: str, cards: list[Json], ts: Ts = None, context: Ctx = None) -> Json:
    """Shared contact cards (see :func:`contact_card`)."""
    return _message(wa_id, wamid, ts, "contacts", cards, context)


def interactive_button_reply(
    wa_id: str, wamid: str, button_id: str, title: str, ts: Ts = None, context: Ctx = None
) -> Json:
    """A tap on a reply button of an interactive message we sent."""
    obj = {"type": "button_reply", "button_reply": {"id": button_id, "title": title}}
    return _message(wa_id, wamid, ts, "interactive", obj, context)


def interactive_list_reply(
    wa_id: str,
    wamid: str,
    row_id: str,
    title: str,
    description: str | None = None,
    ts: Ts = None,
    context: Ctx = None,
) -> Json:
    """A choice in a list message we sent."""
    obj = {"type": "list_reply", "list_reply": _some(id=row_id, title=title, description=description)}
    return _message(wa_id, wamid, ts, "interactive", obj, context)


def button(wa_id: str, wamid: str, payload: str, text: str, ts: Ts = None, context: Ctx = None) -> Json:
    """A tap on a template's quick-reply button (type ``button``, not ``interactive``)."""
    return _message(wa_id, wamid, ts, "button", {"payload": payload, "text": text}, context)


def reaction(wa_id: str, wamid: str, target_wamid: str, emoji: str | None, ts: Ts = None) -> Json:
    """A reaction to ``target_wamid``; ``emoji=""`` or ``None`` (key left out) removes it."""
    return _message(wa_id, wamid, ts, "reaction", _some(message_id=target_wamid, emoji=emoji))


def order_item(product_retailer_id: str, quantity: int, item_price: float, currency: str) -> Json:
    return _some(
        product_retailer_id=product_retailer_id, quantity=quantity, item_price=item_price, currency=currency
    )


def order(
    wa_id: str,
    wamid: str,
    catalog_id: str,
    product_items: list[Json],
    text: str = "",
    ts: Ts = None,
) -> Json:
    """An order from the catalog (see :func:`order_item`)."""
    obj = {"catalog_id": catalog_id, "text": text, "product_items": product_items}
    return _message(wa_id, wamid, ts, "order", obj)


def system_number_change(
    old_wa_id: str,
    new_wa_id: str,
    wamid: str,
    ts: Ts = None,
    body: str | None = None,
    *,
    legacy: bool = False,
) -> Json:
    """The system message sent when a customer moves to a new number (send it without contacts).
    ``legacy`` names the new number ``new_wa_id``, as Meta's older payloads did."""
    obj = {
        "body": body or f"User changed from {old_wa_id} to {new_wa_id}",
        "new_wa_id" if legacy else "wa_id": new_wa_id,
        "type": "user_changed_number",
    }
    return _message(old_wa_id, wamid, ts, "system", obj)


def system_identity_change(wa_id: str, wamid: str, ts: Ts = None) -> Json:
    """The system message sent when a customer's security identity changed (reinstalled, new phone)."""
    message = _message(wa_id, wamid, ts, "system", None)
    stamp = message["timestamp"]
    message["identity"] = {"acknowledged": True, "created_timestamp": stamp, "hash": secrets.token_hex(8)}
    message["system"] = {"body": "User identity changed", "type": "customer_identity_changed"}
    return message


def unsupported(wa_id: str, wamid: str, ts: Ts = None, unsupported_type: str | None = None) -> Json:
    """A message of a type the Cloud API does not support (error 131051)."""
    message = _message(wa_id, wamid, ts, "unsupported", None)
    message["errors"] = [
        error(131051, "Message type unknown", details="Message type is currently not supported.")
    ]
    return message | _some(unsupported=None if unsupported_type is None else {"type": unsupported_type})


def unknown_type(wa_id: str, wamid: str, type_name: str, body_obj: Any, ts: Ts = None) -> Json:
    """A message of a type MAX does not know (yet), carried under its own key as Meta does."""
    return _message(wa_id, wamid, ts, type_name, body_obj)


# Statuses and errors ---------------------------------------------------------------------------
SERVICE_PRICING: Json = {
    "billable": False,
    "pricing_model": "PMP",
    "type": "free_customer_service",
    "category": "service",
}


def status(
    wamid: str,
    status: str,
    recipient_id: str,
    ts: Ts = None,
    errors: list[Json] | None = None,
    *,
    pricing: Json | None = None,
    conversation: Json | None = None,
    biz_opaque_callback_data: str | None = None,
) -> Json:
    """One ``statuses[]`` item (sent, delivered, read, played or failed).

    Successful statuses carry ``pricing`` (by default a free service reply, in the per-message
    pricing format Meta uses since July 2025); failed ones carry ``errors`` instead.
    """
    return _some(
        id=wamid,
        status=status,
        timestamp=_timestamp(ts),
        recipient_id=recipient_id,
        biz_opaque_callback_data=biz_opaque_callback_data,
        conversation=conversation,
        pricing=None if status == "failed" else dict(pricing or SERVICE_PRICING),
        errors=errors or None,
    )


def error(
    code: int, title: str, message: str | None = None, details: str | None = None, href: str | None = None
) -> Json:
    """One error object as found in ``statuses[].errors``, ``messages[].errors`` and ``value.errors``."""
    error_data = {"details": details or title}
    return _some(code=code, title=title, message=message or title, error_data=error_data, href=href)


# Conveniences -----------------------------------------------------------------------------------
def text_webhook(
    phone_number_id: str,
    wa_id: str,
    wamid: str,
    body: str,
    name: str = "Customer",
    ts: Ts = None,
) -> Json:
    """A whole webhook body with one customer text message."""
    change = messages_change(phone_number_id, [text(wa_id, wamid, body, ts)], [contact(wa_id, name)])
    return envelope(phone_number_id, [change])


def encode(payload: Any) -> bytes:
    """The bytes Meta would send: compact JSON with non-ASCII escaped as ``\\uXXXX``."""
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode()


def sign(raw: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` value for ``raw``: ``sha256=`` + lowercase hex HMAC-SHA256."""
    return "sha256=" + hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()


def sign_sha1(raw: bytes, app_secret: str) -> str:
    """The legacy ``X-Hub-Signature`` value Meta still sends beside the SHA-256 one."""
    return "sha1=" + hmac.new(app_secret.encode(), raw, hashlib.sha1).hexdigest()


def sha256_b64(data: bytes) -> str:
    """A file's ``sha256`` as Meta gives it in webhooks and media info: base64 of the digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def new_wamid() -> str:
    """A fresh message id in Meta's style (``wamid.`` + base64 of opaque bytes)."""
    return "wamid." + base64.b64encode(secrets.token_bytes(30)).decode()
