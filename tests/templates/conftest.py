"""A live MAX with WhatsApp configured against the Graph API sandbox (real HTTP both ways)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.channels.conftest import APP_SECRET, app, settings, whatsapp, worker  # noqa: F401
from tests.conftest import People, bearer
from tests.support.live import LiveServer
from tests.support.sandbox_fixtures import sandbox_fixture, sandbox_graph_url  # noqa: F401


@pytest.fixture
def admin(people: People) -> tuple[Any, str]:
    return people.user("admin", "Ada Admin")


class Api:
    """HTTP calls to the live server as one user."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.http = httpx.Client(base_url=base, headers=bearer(token), timeout=30)

    def __getattr__(self, method: str) -> Any:
        return getattr(self.http, method)


@pytest.fixture
def as_admin(live: LiveServer, admin: tuple[Any, str]) -> Iterator[Api]:
    api = Api(live.url, admin[1])
    yield api
    api.http.close()


def order_shipped(language: str = "es", **overrides: Any) -> dict[str, Any]:
    body = {
        "name": "order_shipped",
        "language": language,
        "category": "UTILITY",
        "components": [
            {
                "type": "BODY",
                "text": "Hola {{1}}, tu pedido {{2}} ha sido enviado. Tracking: {{3}}",
                "example": {"body_text": [["Juan", "A-1001", "1Z999"]]},
            }
        ],
    }
    body.update(overrides)
    return body
