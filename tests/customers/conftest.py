"""Customers over real HTTP: WhatsApp webhooks (Meta-signed) and Chat App messages (Standard
Webhooks-signed) into a live server, read back through the API."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from max_server.channels.chat_app import signed_headers
from max_server.channels.whatsapp import payloads as p
from max_server.clock import FrozenClock
from max_server.db import Database
from tests.channels.conftest import CHAT_SECRET, WhatsApp
from tests.channels.conftest import app as app  # WhatsApp and the Chat App configured
from tests.channels.conftest import graph_url as graph_url
from tests.channels.conftest import settings as settings
from tests.channels.conftest import whatsapp as whatsapp
from tests.conftest import People, bearer
from tests.support.live import LiveServer


class Desk:
    """Feeds customers in through the channels and reads them back as an admin (or ``token``)."""

    def __init__(self, live: LiveServer, whatsapp: WhatsApp, admin: str, clock: FrozenClock) -> None:
        self.live = live
        self.whatsapp = whatsapp
        self.admin = admin
        self.admin_id: int = 0
        self.clock = clock
        self.http = httpx.Client(base_url=live.url, timeout=30)

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, headers=bearer(token or self.admin), **kwargs)

    def ok(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        response = self.call(method, path, token, **kwargs)
        assert response.status_code in (200, 201), (response.status_code, response.text)
        return response.json()

    def get(self, path: str, token: str | None = None, **params: Any) -> Any:
        return self.ok("GET", path, token, params=params)

    def wa(self, body: str, wa_id: str = "5215512345678", name: str = "Juan López") -> str:
        return self.whatsapp.text(body, wa_id=wa_id, ts=self.clock.now().timestamp(), name=name)

    def wa_message(self, message: dict[str, Any], wa_id: str, name: str = "Juan López") -> None:
        self.whatsapp.message(message, wa_id=wa_id, name=name)

    def chat(self, customer_id: str, text: str, **customer: Any) -> dict[str, Any]:
        body = {
            "id": f"m_{uuid.uuid4().hex}",
            "customer": {"id": customer_id, **customer},
            "text": text,
        }
        data = json.dumps(body).encode()
        response = self.http.post(
            "/channels/chat-app/messages", content=data, headers=signed_headers(CHAT_SECRET, data)
        )
        assert response.status_code == 200, response.text
        return body

    def customer_by(self, channel: str, external_id: str, token: str | None = None) -> dict[str, Any]:
        return self.get("/api/v1/customers/by-identity", token, channel=channel, external_id=external_id)

    def conversations(self, customer_id: str, token: str | None = None) -> list[dict[str, Any]]:
        return self.get("/api/v1/conversations", token, status="all", customer_id=customer_id, limit=500)[
            "conversations"
        ]

    def close(self, conversation_id: str) -> None:
        self.ok("POST", f"/api/v1/conversations/{conversation_id}/close", json={"reason": "resolved"})

    def new_conversation_later(self) -> None:
        """Moves the clock past the reopen window, so the next message opens a new conversation."""
        self.clock.advance(hours=25)


@pytest.fixture
def desk(live: LiveServer, whatsapp: WhatsApp, people: People, clock: FrozenClock) -> Iterator[Desk]:
    user, admin = people.user("admin", "Ada Admin")
    running = Desk(live, whatsapp, admin, clock)
    running.admin_id = user.id
    yield running
    running.http.close()


def rows(db: Database, sql: str, **params: Any) -> list[Any]:
    from sqlalchemy import text

    with db.session(write=False) as session:
        return list(session.execute(text(sql), params).all())


def new_wamid() -> str:
    return p.new_wamid()
