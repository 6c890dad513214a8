"""Tokens and webhook secrets are shown once, when they are made, and never again: not in any
log record (at DEBUG, before any redaction), not in the CLI's list and show output (text or
JSON), not in error messages, whatever the caller sends."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from max_cli.main import app as cli_app
from max_server import logs
from max_server.db import Database
from max_server.logs import Redactor
from max_server.settings import Settings
from tests.conftest import People, bearer, make_settings
from tests.support.live import LiveServer
from tests.support.receiver import Receiver

APP_SECRET = "app-" + secrets.token_hex(12)
VERIFY_TOKEN = "verify-" + secrets.token_hex(12)
ACCESS_TOKEN = "EAAG" + secrets.token_urlsafe(30)
SECRET_KEY = secrets.token_urlsafe(32)
CLIENT_LOGGERS = ("websockets.client", "httpx", "httpcore")  # this test's own clients


@pytest.fixture
def receiver() -> Any:
    with Receiver() as running:
        yield running


@pytest.fixture
def settings(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("MAX_CONFIG", raising=False)
    return make_settings(
        db,
        tmp_path,
        server={"secret_key": SECRET_KEY},
        whatsapp={"app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN, "access_token": ACCESS_TOKEN},
        webhooks={"allow_private_networks": True},
    )


class Leaks:
    """Everything a secret could show up in, gathered as the test goes."""

    def __init__(self) -> None:
        self.secrets: list[str] = [APP_SECRET, VERIFY_TOKEN, ACCESS_TOKEN, SECRET_KEY]
        self.texts: list[tuple[str, str]] = []  # (where, text)

    def keep(self, *values: str) -> None:
        self.secrets += values

    def saw(self, where: str, text: str) -> None:
        self.texts.append((where, text))

    def found(self) -> list[tuple[str, str]]:
        return [(where, s[:10] + "…") for where, text in self.texts for s in self.secrets if s in text]


def run_cli(home: Path, url: str, token: str, *args: str) -> tuple[int, str]:
    env = {
        "MAX_URL": url,
        "MAX_TOKEN": token,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    result = CliRunner().invoke(cli_app, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout + result.stderr


def test_secrets_are_shown_once_and_never_again(
    live: LiveServer,
    people: People,
    receiver: Receiver,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
) -> None:
    live_settings = settings
    caplog.set_level(logging.DEBUG)
    for key in ("MAX_URL", "MAX_TOKEN", "MAX_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    leaks = Leaks()
    _, admin = people.user("admin")
    leaks.keep(admin)
    api = httpx.Client(base_url=live.url, headers=bearer(admin), timeout=30)

    made = api.post("/api/v1/users", json={"name": "Ana", "email": "ana@example.com", "role": "agent"}).json()
    extra = api.post(f"/api/v1/users/{made['user']['id']}/tokens", json={"name": "laptop"}).json()
    revoked = api.post(f"/api/v1/users/{made['user']['id']}/tokens", json={"name": "old"}).json()
    api.delete(f"/api/v1/tokens/{revoked['api_token']['id']}")
    hook = api.post("/api/v1/webhooks", json={"url": receiver.url + "/hooks", "events": ["*"]}).json()
    rotated = api.post(f"/api/v1/webhooks/{hook['subscription']['id']}/rotate-secret").json()
    leaks.keep(made["token"], extra["token"], revoked["token"], hook["secret"], rotated["secret"])
    assert hook["secret"].startswith("whsec_") and rotated["secret"] != hook["secret"]

    # Callers who get things wrong: their words are never echoed back or logged.
    forged = "max_" + secrets.token_urlsafe(32)
    leaks.keep(forged)
    for token in (forged, revoked["token"], "Bearer " + forged, forged + "'; DROP TABLE api_tokens; --"):
        answer = httpx.get(live.url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401
        leaks.saw("401 answer", answer.text)
    wrong_sig = httpx.post(
        live.url + "/webhooks/whatsapp", content=b"{}", headers={"X-Hub-Signature-256": "sha256=" + "0" * 64}
    )
    leaks.saw("webhook 401", wrong_sig.text)
    handshake = httpx.get(
        live.url + "/webhooks/whatsapp",
        params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN[:-1] + "x", "hub.challenge": "1"},
    )
    leaks.saw("handshake 403", handshake.text)
    with pytest.raises(InvalidStatus) as denied:
        connect(live.url.replace("http", "ws") + f"/api/v1/events?token={forged}", open_timeout=10)
    leaks.saw("websocket 401", denied.value.response.body.decode() if denied.value.response.body else "")
    with connect(
        live.url.replace("http", "ws") + f"/api/v1/events?token={extra['token']}", open_timeout=10
    ) as ws:
        leaks.saw("websocket frame", str(ws.recv(timeout=10)))

    # What admins read back.
    for path in (
        "/api/v1/webhooks",
        f"/api/v1/webhooks/{hook['subscription']['id']}",
        f"/api/v1/users/{made['user']['id']}/tokens",
        "/api/v1/users",
        "/api/v1/me",
    ):
        leaks.saw(path, api.get(path).text)
    home = tmp_path / "home"
    home.mkdir()
    for args in (
        ("webhooks", "list"),
        ("webhooks", "show", hook["subscription"]["id"]),
        ("tokens", "list", "ana@example.com"),
        ("users", "list"),
        ("users", "show", "ana@example.com"),
    ):
        for fmt in ((), ("--json",)):
            code, output = run_cli(home, live.url, admin, *args, *fmt)
            assert code == 0, output
            leaks.saw("max " + " ".join(args + fmt), output)
    code, output = run_cli(home, live.url, forged, "users", "list")
    assert code == 4
    leaks.saw("max with a wrong token", output)
    api.close()

    # MAX's own records hold no secret even before redaction; every record, libraries' included
    # (uvicorn logs websocket request lines, ?token= and all), holds none as the handler of
    # `max server run` writes it (logs.Redactor).
    redactor = Redactor(logs.settings_secrets(live_settings))
    server_records = [r for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS)]
    assert len(server_records) > 20, "the server's logs were not captured"
    for record in server_records:
        if record.name.startswith("max"):
            leaks.saw(f"{record.levelname} {record.name}", record.getMessage() + (record.exc_text or ""))
    for record in server_records:
        redactor.filter(record)
        leaks.saw(
            f"{record.levelname} {record.name} (as written)", record.getMessage() + (record.exc_text or "")
        )
    assert leaks.found() == []
