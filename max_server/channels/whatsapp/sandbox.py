"""A local stand-in for the Graph API calls MAX makes, served over real HTTP on loopback.

Point ``whatsapp.graph_url`` at :attr:`Sandbox.graph_url` and MAX sends messages, downloads media
and manages templates against it; the sandbox plays the customer and Meta's webhooks in return
(:meth:`Sandbox.customer_text`, :meth:`Sandbox.status_update`, ...), signed with the app secret.
Tests steer it (failures, refusals, delays) and read what it received (:attr:`Sandbox.requests`).
Answers and errors follow Meta's documented shapes; see ``reference/whatsapp-cloud-api.md``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from max_server.channels.whatsapp import payloads, sandbox_control
from max_server.channels.whatsapp.sandbox_meta import (
    MetaWebhooks,
    TemplateStore,
    meta_error,
    new_id,
    no_object,
    send_problem,
)
from max_server.serve import ThreadedServer

log = logging.getLogger("max.whatsapp.sandbox")
Json = dict[str, Any]
MEDIA_URL_TTL_S = 300.0  # Meta's media URLs live 5 minutes


@dataclass(frozen=True)
class RecordedRequest:
    """One request the sandbox received on its Graph API or media endpoints."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lowercased
    json: Any | None
    body: bytes
    received_at: float = field(default=0.0, compare=False)  # time.monotonic() on arrival


@dataclass
class _Media:
    data: bytes
    mime_type: str
    failures: int = 0
    failure_status: int = 500


class Sandbox(MetaWebhooks):
    """The Graph API stand-in; see the module docstring. Controls are safe to call from any thread."""

    def __init__(
        self,
        app_secret: str,
        access_token: str = "sandbox-token",  # noqa: S107 - the sandbox's own token, not a secret
        phone_number_id: str = payloads.DEFAULT_PHONE_NUMBER_ID,
        waba_id: str = payloads.DEFAULT_WABA_ID,
        version: str = "v23.0",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.app_secret, self.access_token = app_secret, access_token
        self.phone_number_id, self.waba_id, self.version = phone_number_id, waba_id, version
        self.phone_number_ids = {phone_number_id}  # every number of the WABA (add_phone_number)
        self.host, self.port = host, port
        self.media_url_ttl = MEDIA_URL_TTL_S
        self.on_request: Callable[[RecordedRequest], object] | None = None
        self.hook_errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._requests: list[RecordedRequest] = []
        self._accepted: list[tuple[str, Json]] = []
        self._answered: list[tuple[str, float]] = []
        self._failures: deque[tuple[int, int, str, str | None]] = deque()
        self._delays: deque[float] = deque()
        self._hook: Callable[[str], object] | None = None
        self._media: dict[str, _Media] = {}
        self._urls: dict[str, tuple[str, float]] = {}
        self.template_store = TemplateStore()
        self._server: ThreadedServer | None = None
        v = f"/{version}"
        self.app = Starlette(
            routes=[
                Route(v + "/{phone_number_id}/messages", self._send, methods=["POST"]),
                Route(
                    v + "/{waba_id}/message_templates", self._templates_api, methods=["GET", "POST", "DELETE"]
                ),
                Route(v + "/{media_id}", self._media_info, methods=["GET"]),
                Route(v + "/{rest:path}", self._unsupported, methods=["GET", "POST", "DELETE", "PUT"]),
                Route("/whatsapp_business/attachments/", self._download, methods=["GET"]),
                *sandbox_control.routes(self),
            ]
        )

    # Lifecycle ---------------------------------------------------------------------------------
    def start(self) -> Sandbox:
        self._stopping.clear()
        self._server = ThreadedServer(self.app, host=self.host, port=self.port).start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # ends pending delay_next() pauses, so shutdown is quick
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not running: call start() first")
        return self._server.url

    @property
    def graph_url(self) -> str:
        """What MAX's ``whatsapp.graph_url`` is set to."""
        return f"{self.url}/{self.version}"

    # Recording ---------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every Graph API and media request received, oldest first (control calls excluded)."""
        with self._lock:
            return list(self._requests)

    def sent_messages(self, accepted_only: bool = False) -> list[Json]:
        """Bodies of message sends: every attempt, or only those answered with a wamid."""
        with self._lock:
            if accepted_only:
                return [body for _, body in self._accepted]
            sends = [r for r in self._requests if r.method == "POST" and r.path.endswith("/messages")]
            return [r.json for r in sends if isinstance(r.json, dict)]

    def accepted(self) -> list[tuple[str, Json]]:
        """``(wamid, body)`` of every accepted send."""
        with self._lock:
            return list(self._accepted)

    def answered(self) -> list[tuple[str, float]]:
        """``(wamid, time.monotonic())`` when each accepted send's answer was ready, in order."""
        with self._lock:
            return list(self._answered)

    def callback_data_of(self, wamid: str) -> str | None:
        """The ``biz_opaque_callback_data`` the send of ``wamid`` carried (Meta echoes it)."""
        with self._lock:
            bodies = [body for accepted, body in self._accepted if accepted == wamid]
        data = bodies[0].get("biz_opaque_callback_data") if bodies else None
        return data if isinstance(data, str) else None

    def templates(self) -> list[Json]:
        """The templates created here, with their current status."""
        return self.template_store.all()

    def clear(self) -> None:
        """Forgets recorded requests and pending controls (media and templates stay)."""
        with self._lock:
            self._requests.clear()
            self._accepted.clear()
            self._answered.clear()
            self._failures.clear()
            self._delays.clear()
            self.hook_errors.clear()

    # Controls ----------------------------------------------------------------------------------
    def fail_next(
        self, count: int, status: int = 500, code: int = 131000, message: str = "Something went wrong"
    ) -> None:
        """The next ``count`` sends fail with ``status`` and Meta's error envelope."""
        with self._lock:
            self._failures.extend([(status, code, message, None)] * count)

    def refuse_next(
        self, code: int = 131047, message: str = "Re-engagement message", status: int = 400
    ) -> None:
        """The next send is refused, by default because the 24-hour window is closed."""
        details = None
        if code == 131047:
            details = "More than 24 hours have passed since the recipient last replied to the sender number."
        with self._lock:
            self._failures.append((status, code, message, details))

    def add_phone_number(self, phone_number_id: str) -> None:
        """Another business number of this WABA: sends from it are accepted too."""
        with self._lock:
            self.phone_number_ids.add(phone_number_id)

    def delay_next(self, seconds: float) -> None:
        """The next send is answered only after ``seconds`` (it is still accepted)."""
        with self._lock:
            self._delays.append(seconds)

    def before_send_answer(self, callback: Callable[[str], object] | None) -> None:
        """Calls ``callback(wamid)`` (in a worker thread) before answering each accepted send."""
        with self._lock:
            self._hook = callback

    def add_media(self, data: bytes, mime_type: str, media_id: str | None = None) -> str:
        media_id = media_id or new_id()
        with self._lock:
            self._media[media_id] = _Media(data, mime_type)
        return media_id

    def media_failures(self, media_id: str, count: int, status: int = 500) -> None:
        """The next ``count`` downloads of ``media_id`` fail with ``status``."""
        with self._lock:
            self._media[media_id].failures = count
            self._media[media_id].failure_status = status

    def expire_media_urls(self) -> None:
        """Every media URL handed out so far expires now (Meta's expire after 5 minutes)."""
        with self._lock:
            self._urls.clear()

    # Graph API endpoints -----------------------------------------------------------------------
    async def _record(self, request: Request) -> RecordedRequest:
        raw = await request.body()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        headers = {k.lower(): v for k, v in request.headers.items()}
        recorded = RecordedRequest(
            request.method,
            request.url.path,
            dict(request.query_params),
            headers,
            parsed,
            raw,
            time.monotonic(),
        )
        with self._lock:
            self._requests.append(recorded)
        if self.on_request is not None:
            self.on_request(recorded)
        return recorded

    def _denied(self, request: Request) -> Response | None:
        expected = f"Bearer {self.access_token}".encode()
        if secrets.compare_digest(request.headers.get("authorization", "").encode(), expected):
            return None
        return meta_error(401, 190, "Invalid OAuth access token - Cannot parse access token")

    async def _send(self, request: Request) -> Response:
        recorded = await self._record(request)
        if (denied := self._denied(request)) is not None:
            return denied
        if request.path_params["phone_number_id"] not in self.phone_number_ids:
            return no_object("POST", request.path_params["phone_number_id"])
        with self._lock:
            delay = self._delays.popleft() if self._delays else 0.0
            failure = self._failures.popleft() if self._failures else None
            hook = self._hook
        if delay:
            await self._pause(delay)
        if failure is not None:
            status, code, message, details = failure
            return meta_error(status, code, f"(#{code}) {message}", details=details)
        body = recorded.json
        problem = send_problem(body)
        if problem is not None or not isinstance(body, dict):
            return meta_error(400, 100, f"(#100) {problem}")
        wamid = payloads.new_wamid()
        with self._lock:
            self._accepted.append((wamid, body))
        if hook is not None:
            try:
                await run_in_threadpool(hook, wamid)
            except Exception as exc:  # reported to the test through hook_errors and the 500 answer
                log.exception("before_send_answer hook failed")
                self.hook_errors.append(exc)
                return meta_error(500, 1, f"sandbox before_send_answer hook failed: {exc!r}")
        to = body["to"]
        with self._lock:
            self._answered.append((wamid, time.monotonic()))
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": re.sub(r"\D", "", to)}],
                "messages": [{"id": wamid}],
            }
        )

    async def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set() and (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.05))

    async def _media_info(self, request: Request) -> Response:
        await self._record(request)
        if (denied := self._denied(request)) is not None:
            return denied
        media_id = request.path_params["media_id"]
        if media_id in self.phone_number_ids:  # GET /{phone_number_id}: the number itself
            return JSONResponse(self._phone_number(media_id, request.query_params.get("fields")))
        token = secrets.token_urlsafe(24)
        with self._lock:
            media = self._media.get(media_id)
            if media is not None:
                self._urls[token] = (media_id, time.monotonic() + self.media_url_ttl)
        if media is None:
            return no_object("GET", media_id)
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "url": f"{self.url}/whatsapp_business/attachments/?mid={media_id}&hash={token}",
                "mime_type": media.mime_type,
                "sha256": payloads.sha256_b64(media.data),
                "file_size": str(len(media.data)),
                "id": media_id,
            }
        )

    def _phone_number(self, phone_number_id: str, fields: str | None) -> Json:
        """What Meta answers for the business number (``fields`` narrows it, ``id`` stays)."""
        number = payloads.DEFAULT_DISPLAY_PHONE_NUMBER
        profile: Json = {
            "verified_name": "MAX Sandbox",
            "display_phone_number": f"+{number[0]} {number[1:4]}-{number[4:7]}-{number[7:]}",
            "quality_rating": "GREEN",
            "code_verification_status": "VERIFIED",
            "platform_type": "CLOUD_API",
            "throughput": {"level": "STANDARD"},
        }
        if fields:
            wanted = {f.strip() for f in fields.split(",")}
            profile = {k: v for k, v in profile.items() if k in wanted}
        return {**profile, "id": phone_number_id}

    async def _download(self, request: Request) -> Response:
        await self._record(request)
        if (denied := self._denied(request)) is not None:
            return denied
        mid, token = request.query_params.get("mid", ""), request.query_params.get("hash", "")
        now = time.monotonic()
        with self._lock:
            self._urls = {k: v for k, v in self._urls.items() if v[1] > now}
            media = self._media.get(mid) if self._urls.get(token, ("", 0.0))[0] == mid else None
            failing = media is not None and media.failures > 0
            if media is not None and failing:
                media.failures -= 1
        if media is None:
            return PlainTextResponse("URL expired or unknown", status_code=404)
        if failing:
            return PlainTextResponse("Sandbox download failure", status_code=media.failure_status)
        return Response(media.data, media_type=media.mime_type)

    async def _templates_api(self, request: Request) -> Response:
        recorded = await self._record(request)
        if (denied := self._denied(request)) is not None:
            return denied
        if request.path_params["waba_id"] != self.waba_id:
            return no_object(request.method, request.path_params["waba_id"])
        if request.method == "POST":
            return self.template_store.create(recorded.json)
        if request.method == "DELETE":
            return self.template_store.delete(recorded.query)
        return self.template_store.list(recorded.query, f"{self.graph_url}/{self.waba_id}/message_templates")

    async def _unsupported(self, request: Request) -> Response:
        await self._record(request)
        if (denied := self._denied(request)) is not None:
            return denied
        return no_object(request.method, request.path_params["rest"])
