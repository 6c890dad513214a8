"""The console against a real MAX server: SQLite, the job worker running, WhatsApp pointed at the
Graph API sandbox (so replies really go out), all over loopback HTTP and websockets.

These tests are about the console, not the database, so they run on SQLite only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from textual.pilot import Pilot

from max_server.app import create_app
from max_server.channels.whatsapp.sandbox import Sandbox
from max_server.db import Database
from max_server.settings import Settings
from max_tui.app import MaxApp
from tests.conftest import SYSTEM, People, make_settings
from tests.support.databases import Template
from tests.support.live import LiveServer, free_port

APP_SECRET = "tui-app-secret"
ACCESS_TOKEN = "sandbox-token"
WAIT_SECONDS = 15.0


@pytest.fixture
def db(templates: dict[str, Template], tmp_path: Path) -> Iterator[Database]:
    database = templates["sqlite"].fresh(tmp_path)
    yield database
    database.dispose()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(app_secret=APP_SECRET, access_token=ACCESS_TOKEN) as running:
        yield running


@pytest.fixture
def port() -> int:
    """Chosen before the server starts: media links carry ``server.public_url``."""
    return free_port()


@pytest.fixture
def rate_limits() -> dict[str, Any]:
    """Overridden by tests that need the customer rate limit to trigger quickly."""
    return {}


@pytest.fixture
def settings(
    db: Database,
    tmp_path: Path,
    sandbox: Sandbox,
    port: int,
    rate_limits: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    monkeypatch.delenv("MAX_CONFIG", raising=False)
    return make_settings(
        db,
        tmp_path,
        server={"public_url": f"http://127.0.0.1:{port}"},
        rate_limits=rate_limits,
        whatsapp={
            "app_secret": APP_SECRET,
            "verify_token": "tui-verify-token",
            "access_token": ACCESS_TOKEN,
            "phone_number_id": sandbox.phone_number_id,
            "waba_id": sandbox.waba_id,
            "graph_url": sandbox.graph_url,
            "timeout": 5,
        },
    )


@pytest.fixture
def server(settings: Settings, db: Database, port: int) -> Iterator[LiveServer]:
    with LiveServer(create_app(settings, db=db, background=True), port=port) as running:
        yield running


@dataclass
class Agent:
    user: Any
    token: str
    team: Any


@pytest.fixture
def agent(server: LiveServer, people: People, db: Database, sandbox: Sandbox) -> Agent:
    """Ana, an agent of "support", where new WhatsApp conversations land (unassigned: the team
    does not auto-assign, so what the console shows depends on the console alone)."""
    from max_server.services import channels

    team = people.team("support", name="Support", auto_assign=False)
    user, token = people.user("agent", "Ana")
    people.join(team, user)
    with db.session() as session:
        account = channels.find_account(session, sandbox.phone_number_id)
        channels.set_default_team(session, SYSTEM, str(account.id), "support")
    return Agent(user, token, team)


class Customers:
    """Customers writing on WhatsApp, through the sandbox's signed webhooks (off the event loop)."""

    def __init__(self, sandbox: Sandbox, server: LiveServer) -> None:
        self.sandbox, self.server = sandbox, server

    async def say(self, text: str, wa_id: str = "5215512345678", name: str = "Juan López") -> str:
        return await self.say_at(text, None, wa_id, name)

    async def say_at(
        self, text: str, ts: float | None, wa_id: str = "5215512345678", name: str = "Juan López"
    ) -> str:
        """``ts``: the customer's own timestamp (Meta's), e.g. a day ago for a closed window."""
        response, wamid = await asyncio.to_thread(
            lambda: self.sandbox.customer_text(self.server.url, wa_id, text, name, ts=ts)
        )
        assert response.status_code == 200, response.text
        return wamid

    async def send_file(
        self,
        data: bytes,
        mime_type: str,
        wa_id: str = "5215512345678",
        name: str = "Juan López",
        **options: Any,
    ) -> str:
        """The customer sends a file (image, sticker, document…); returns the WhatsApp media id."""
        response, _, media_id = await asyncio.to_thread(
            lambda: self.sandbox.customer_media(self.server.url, wa_id, data, mime_type, name=name, **options)
        )
        assert response.status_code == 200, response.text
        return media_id


@pytest.fixture
def customers(sandbox: Sandbox, server: LiveServer) -> Customers:
    return Customers(sandbox, server)


@dataclass
class Exchange:
    """One request the console made and the status it got."""

    method: str
    path: str
    params: dict[str, str]
    headers: httpx.Headers
    status: int


class RecordingTransport(httpx.AsyncBaseTransport):
    """The real HTTP transport, noting each request (to prove what the console did not ask for)
    and its answer's status. ``hold`` can keep chosen requests waiting until the test sets the
    event it returns (a slow network, on cue: to provoke races deterministically)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.log: list[tuple[str, str]] = []
        self.exchanges: list[Exchange] = []
        self.hold: Callable[[httpx.Request], asyncio.Event | None] = lambda request: None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.log.append((request.method, request.url.path))
        gate = self.hold(request)
        if gate is not None:
            await gate.wait()
        response = await self.inner.handle_async_request(request)
        params = dict(request.url.params)
        self.exchanges.append(
            Exchange(request.method, request.url.path, params, request.headers, response.status_code)
        )
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class RecordedMaxApp(MaxApp):
    def __init__(self, url: str, token: str, **options: Any) -> None:
        self.recorder = RecordingTransport()
        self.opened: list[Path] = []  # what the system's opener would have been given

        async def opener(path: Path) -> None:
            self.opened.append(path)

        options.setdefault("opener", opener)
        super().__init__(url, token, transport=self.recorder, **options)

    def requests(self, method: str, path_part: str) -> list[str]:
        return [path for m, path in self.recorder.log if m == method and path_part in path]


@pytest.fixture
def console(server: LiveServer, agent: Agent, tmp_path: Path) -> Callable[..., RecordedMaxApp]:
    """Makes a console for Ana (or ``token``) with its own data directory, on ``url`` (default:
    the test server)."""

    def make(
        token: str | None = None, data_dir: Path | None = None, url: str | None = None, **options: Any
    ) -> RecordedMaxApp:
        return RecordedMaxApp(
            url or server.url,
            token or agent.token,
            data_dir=data_dir or tmp_path / "console-data",
            save_dir=tmp_path / "downloads",
            **options,
        )

    return make


async def wait_for(
    pilot: Pilot[Any], check: Callable[[], object], what: str, timeout: float = WAIT_SECONDS
) -> Any:
    """Lets the app run until ``check()`` is truthy (events, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await pilot.pause(0.05)


def ready_screen(app: Any, kind: type[Any]) -> Any:
    """The top screen if it is a ``kind`` and is composed (keys pressed earlier could be lost)."""
    screen = app.screen
    return screen if isinstance(screen, kind) and screen.is_mounted and screen.children else None


def api_get(server: LiveServer, token: str, path: str, **params: Any) -> Any:
    response = httpx.get(server.url + path, params=params, headers={"Authorization": f"Bearer {token}"})
    response.raise_for_status()
    return response.json()
