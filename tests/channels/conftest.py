"""A MAX server with WhatsApp and the Chat App configured, reached over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import Session

from max_server.app import create_app
from max_server.channels.whatsapp import payloads
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs.worker import Worker
from max_server.settings import Settings
from tests.conftest import make_settings
from tests.support.live import LiveServer

APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
PHONE_NUMBER_ID = payloads.DEFAULT_PHONE_NUMBER_ID
CHAT_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def graph_url() -> str:
    return "http://127.0.0.1:9/v23.0"  # overridden by tests that talk to the sandbox


@pytest.fixture
def settings(db: Database, tmp_path: Path, graph_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("MAX_CONFIG", raising=False)
    return make_settings(
        db,
        tmp_path,
        whatsapp={
            "app_secret": APP_SECRET,
            "verify_token": VERIFY_TOKEN,
            "access_token": "sandbox-token",
            "phone_number_id": PHONE_NUMBER_ID,
            "waba_id": payloads.DEFAULT_WABA_ID,
            "graph_url": graph_url,
            "timeout": 5,
        },
        chat_app={"secret": CHAT_SECRET, "callback_url": ""},
        webhooks={"allow_private_networks": True},
    )


@pytest.fixture
def app(settings: Settings, db: Database) -> FastAPI:
    return create_app(settings, db=db, background=False)


class WhatsApp:
    """Posts Meta-signed webhooks to the live server."""

    def __init__(self, base_url: str) -> None:
        self.url = base_url + "/webhooks/whatsapp"
        self.http = httpx.Client(timeout=30)

    def post_raw(self, raw: bytes, signature: str | None = None, **headers: str) -> httpx.Response:
        sent = {"Content-Type": "application/json", **headers}
        if signature is not False:
            sent["X-Hub-Signature-256"] = signature or payloads.sign(raw, APP_SECRET)
        return self.http.post(self.url, content=raw, headers=sent)

    def post(self, payload: dict[str, Any]) -> httpx.Response:
        return self.post_raw(payloads.encode(payload))

    def message(
        self,
        message: dict[str, Any],
        wa_id: str = "5215512345678",
        name: str = "Juan López",
        user_id: str | None = None,
    ) -> httpx.Response:
        change = payloads.messages_change(
            PHONE_NUMBER_ID, [message], [payloads.contact(wa_id, name, user_id)]
        )
        response = self.post(payloads.envelope(PHONE_NUMBER_ID, [change]))
        assert response.status_code == 200, response.text
        return response

    def text(
        self,
        body: str,
        wa_id: str = "5215512345678",
        wamid: str | None = None,
        ts: float | None = None,
        name: str = "Juan López",
    ) -> str:
        wamid = wamid or payloads.new_wamid()
        self.message(payloads.text(wa_id, wamid, body, ts), wa_id=wa_id, name=name)
        return wamid

    def statuses(self, *statuses: dict[str, Any]) -> httpx.Response:
        change = payloads.statuses_change(PHONE_NUMBER_ID, list(statuses))
        response = self.post(payloads.envelope(PHONE_NUMBER_ID, [change]))
        assert response.status_code == 200, response.text
        return response


@pytest.fixture
def whatsapp(live: LiveServer) -> Iterator[WhatsApp]:
    client = WhatsApp(live.url)
    yield client
    client.http.close()


@pytest.fixture
def worker(db: Database, settings: Settings, clock: FrozenClock) -> Worker:
    """Runs jobs on demand (``worker.drain()``) with the test clock, so retries are exact."""
    from max_server.jobs import registry

    registry.load_builtin_handlers()

    def now(_: Session) -> Any:
        return clock.now()

    return Worker(db, settings, concurrency=1, now=now, name="test-worker", lease_seconds=60)


ApiCall = Callable[..., Any]
