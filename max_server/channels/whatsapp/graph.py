"""The one client for every Graph API call MAX makes: sends, media and template management.

Synchronous (``httpx.Client``): jobs call it from worker threads. ``base_url`` is the configured
``whatsapp.graph_url`` with its version (``https://graph.facebook.com/v23.0``, or the sandbox's).

Failures come in two kinds. :class:`GraphError`: Meta answered with an error (its error envelope
parsed, or the status and a trimmed text when the body is not JSON). :class:`GraphUnreachable`:
no answer; ``ambiguous`` tells whether the request may have reached Meta, which decides whether a
send may be retried blindly or must be marked ``unknown``. The access token never appears in either.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

# Meta error codes worth retrying: rate limits and throttling (130429, 131056 pair rate limit, 4, 17,
# 80007, 2 temporary API error), generic and unavailable (131000, 131016), and 131057, answered
# while a number's throughput upgrade is in progress (about a minute).
RETRYABLE_CODES = frozenset({2, 4, 17, 80007, 130429, 131000, 131016, 131056, 131057})
WINDOW_CLOSED_CODE = 131047
_TEXT_LIMIT = 300


class GraphError(Exception):
    """Meta answered a Graph API call with an error."""

    def __init__(
        self,
        status: int,
        code: int | None,
        subcode: int | None,
        message: str,
        details: str | None = None,
        fbtrace_id: str | None = None,
        error_type: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.subcode = subcode
        self.message = message
        self.details = details
        self.fbtrace_id = fbtrace_id
        self.error_type = error_type
        super().__init__(str(self))

    def __str__(self) -> str:
        code = f" code {self.code}" if self.code is not None else ""
        details = f" ({self.details})" if self.details else ""
        return f"Graph API HTTP {self.status}{code}: {self.message}{details}"

    @property
    def retryable(self) -> bool:
        """True when the same call may succeed later (server errors, rate limits, throttling)."""
        return self.status >= 500 or self.status == 429 or self.code in RETRYABLE_CODES

    @property
    def window_closed(self) -> bool:
        """True when the 24-hour customer-service window is closed: only a template can be sent."""
        return self.code == WINDOW_CLOSED_CODE


class GraphUnreachable(Exception):
    """No answer from the Graph API (connection refused, timeout, connection dropped).

    ``ambiguous`` is True when the request may have reached Meta (it was sent, the answer never
    came), False when it certainly did not (no connection was made).
    """

    def __init__(self, message: str, ambiguous: bool) -> None:
        super().__init__(message)
        self.message = message
        self.ambiguous = ambiguous


@dataclass(frozen=True)
class SendResult:
    """Meta accepted a message: its wamid, and the recipient's ``wa_id`` as Meta resolved it."""

    wamid: str
    wa_id: str | None
    raw: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class MediaInfo:
    """Where to download a media object; ``url`` lives 5 minutes, ``sha256`` is base64."""

    url: str
    mime_type: str | None
    sha256: str | None
    file_size: int | None
    id: str


def text_body(
    to: str, text: str, reply_to_wamid: str | None = None, preview_url: bool = False
) -> dict[str, Any]:
    """The JSON of a free-form text message to ``to`` (E.164 with ``+``), optionally quoting a message."""
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"preview_url": preview_url, "body": text},
    }
    if reply_to_wamid:
        body["context"] = {"message_id": reply_to_wamid}
    return body


TemplateParameters = Sequence[str | Mapping[str, Any]] | Mapping[str, str]


def _parameters(values: TemplateParameters) -> list[dict[str, Any]]:
    # A mapping is a named-parameter template; in a sequence, a string is a text parameter and a
    # mapping is passed through as is (e.g. {"type": "image", "image": {"id": ...}} in a header).
    if isinstance(values, Mapping):
        return [{"type": "text", "parameter_name": k, "text": v} for k, v in values.items()]
    return [{"type": "text", "text": v} if isinstance(v, str) else dict(v) for v in values]


def template_body(
    to: str,
    name: str,
    language: str,
    parameters: TemplateParameters,
    header_parameters: TemplateParameters | None = None,
) -> dict[str, Any]:
    """The JSON of a template message with its body (and header) parameters."""
    components: list[dict[str, Any]] = []
    if header_parameters:
        components.append({"type": "header", "parameters": _parameters(header_parameters)})
    if parameters:
        components.append({"type": "body", "parameters": _parameters(parameters)})
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    if components:
        template["components"] = components
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": template,
    }


class GraphClient:
    """Calls the Graph API with the configured bearer token; see the module docstring for errors."""

    text_body = staticmethod(text_body)
    template_body = staticmethod(template_body)

    def __init__(
        self,
        base_url: str,
        access_token: str,
        timeout: float = 20.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            follow_redirects=False,
        )

    def _url(self, *segments: str) -> str:
        return "/".join([self.base_url, *(quote(str(s), safe="") for s in segments)])

    # Messages ----------------------------------------------------------------------------------
    def send_message(self, phone_number_id: str, body: dict[str, Any]) -> SendResult:
        """Sends one message; the answer means Meta accepted it (delivery comes by webhook)."""
        response = self._request("POST", self._url(phone_number_id, "messages"), json=body)
        data = _json_object(response)
        wamid = _first(data, "messages").get("id")
        if not isinstance(wamid, str) or not wamid:
            # Accepted but unreadable: not retryable, since a retry could send the message twice.
            raise GraphError(response.status_code, None, None, "the send response carries no message id")
        wa_id = _first(data, "contacts").get("wa_id")
        return SendResult(wamid=wamid, wa_id=wa_id if isinstance(wa_id, str) else None, raw=data)

    # Media -------------------------------------------------------------------------------------
    def get_media(self, media_id: str, phone_number_id: str | None = None) -> MediaInfo:
        """Asks where to download a media object (a fresh URL each time)."""
        params = {"phone_number_id": phone_number_id} if phone_number_id else None
        response = self._request("GET", self._url(media_id), params=params)
        data = _json_object(response)
        url = data.get("url")
        if not isinstance(url, str) or not url:
            raise GraphError(response.status_code, None, None, "the media answer carries no url")
        size = data.get("file_size")
        return MediaInfo(
            url=url,
            mime_type=data.get("mime_type"),
            sha256=data.get("sha256"),
            file_size=int(size) if isinstance(size, int | str) and str(size).isdecimal() else None,
            id=str(data.get("id") or media_id),
        )

    @contextlib.contextmanager
    def stream_media(self, url: str) -> Iterator[httpx.Response]:
        """Opens a media download (same bearer token) as a streamed response.

        An error status raises :class:`GraphError` (404 means the URL expired: ask for a new one);
        network failures, also while reading the body, raise :class:`GraphUnreachable`.
        """
        try:
            with self._client.stream("GET", url) as response:
                if not response.is_success:
                    response.read()
                    raise _error_from(response)
                yield response
        except httpx.TransportError as exc:
            raise _unreachable("GET", url, exc) from None

    # Templates ---------------------------------------------------------------------------------
    def create_template(self, waba_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Submits a template for review; Meta answers ``{"id", "status", "category"}``."""
        return _json_object(self._request("POST", self._url(waba_id, "message_templates"), json=body))

    def list_templates(self, waba_id: str, limit: int = 100, name: str | None = None) -> list[dict[str, Any]]:
        """Every template of the account (all pages), optionally only those called ``name``."""
        params: dict[str, Any] = {"limit": limit}
        if name is not None:
            params["name"] = name
        found: list[dict[str, Any]] = []
        seen: set[str] = set()
        while True:
            data = _json_object(self._request("GET", self._url(waba_id, "message_templates"), params=params))
            page = data.get("data")
            if isinstance(page, list):
                found.extend(item for item in page if isinstance(item, dict))
            paging = _dict(data.get("paging"))
            after = _dict(paging.get("cursors")).get("after")
            # Follow the cursor, not the ``next`` URL: that URL comes from the network, our token must
            # only go to the configured Graph URL. A repeated cursor would loop forever.
            if not page or not paging.get("next") or not isinstance(after, str) or after in seen:
                return found
            seen.add(after)
            params["after"] = after

    def delete_template(self, waba_id: str, name: str, hsm_id: str | None = None) -> dict[str, Any]:
        """Deletes every language of template ``name``, or only the one whose id is ``hsm_id``."""
        params = {"name": name}
        if hsm_id is not None:
            params["hsm_id"] = str(hsm_id)
        return _json_object(self._request("DELETE", self._url(waba_id, "message_templates"), params=params))

    # Plumbing ----------------------------------------------------------------------------------
    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise _unreachable(method, url, exc) from None
        if not response.is_success:
            raise _error_from(response)
        return response

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# Failures never reached Meta when no connection was made; anything later (the request written,
# the answer lost) may have been acted on.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
)


def _unreachable(method: str, url: str, exc: httpx.TransportError) -> GraphUnreachable:
    # The cause is not chained: httpx exceptions hold the request, headers and token included.
    where = url.split("?", 1)[0]
    detail = str(exc) or type(exc).__name__
    return GraphUnreachable(
        f"{method} {where}: {type(exc).__name__}: {detail}", ambiguous=not isinstance(exc, _NOT_SENT)
    )


def _error_from(response: httpx.Response) -> GraphError:
    try:
        data = response.json()
    except ValueError:
        data = None
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):
        text = " ".join(response.text.split())[:_TEXT_LIMIT]
        return GraphError(response.status_code, None, None, text or response.reason_phrase or "error")
    error_data = err.get("error_data")
    details = error_data.get("details") if isinstance(error_data, dict) else None
    return GraphError(
        status=response.status_code,
        code=_int_or_none(err.get("code")),
        subcode=_int_or_none(err.get("error_subcode")),
        message=str(err.get("message") or err.get("error_user_msg") or "error"),
        details=str(details) if details is not None else None,
        fbtrace_id=err.get("fbtrace_id"),
        error_type=err.get("type"),
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first(data: dict[str, Any], key: str) -> dict[str, Any]:
    """The first object of the list ``data[key]``, or {}."""
    items = data.get(key)
    return _dict(items[0]) if isinstance(items, list) and items else {}


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        text = " ".join(response.text.split())[:_TEXT_LIMIT]
        raise GraphError(response.status_code, None, None, f"expected a JSON object, got: {text!r}")
    return data
