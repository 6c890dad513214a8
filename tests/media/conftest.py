"""A MAX server on real HTTP with WhatsApp pointed at the Graph API sandbox, media stored on local
disk or in a real S3 endpoint (moto in server mode on 127.0.0.1, reached with boto3 over HTTP)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from fastapi import FastAPI
from moto.server import ThreadedMotoServer
from sqlmodel import Session, col, select

from max_server.app import create_app
from max_server.channels.chat_app import signed_headers
from max_server.channels.whatsapp import payloads
from max_server.channels.whatsapp.sandbox import Sandbox
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs.worker import Worker
from max_server.models import MediaFile, Message
from max_server.settings import Settings
from tests.conftest import bearer, make_settings
from tests.support.live import LiveServer, free_port

APP_SECRET = "media-test-app-secret"
CHAT_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
S3_KEYS = {"access_key_id": "testing", "secret_access_key": "testing", "region": "us-east-1"}
WA_ID = "5215512345678"


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def storage_backend() -> str:
    return "local"  # tests that cover both parametrize this name with ["local", "s3"]


@pytest.fixture
def s3(moto_url: str) -> Any:
    """A boto3 client of the moto server, for checking what is in the bucket."""
    client = boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name=S3_KEYS["region"],
        aws_access_key_id=S3_KEYS["access_key_id"],
        aws_secret_access_key=S3_KEYS["secret_access_key"],
    )
    yield client
    client.close()


@pytest.fixture
def storage_section(storage_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    if storage_backend == "local":
        return {"backend": "local", "path": str(tmp_path / "media")}
    moto_url = request.getfixturevalue("moto_url")
    s3 = request.getfixturevalue("s3")
    bucket = f"max-media-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    return {"backend": "s3", "bucket": bucket, "endpoint_url": moto_url, **S3_KEYS}


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(APP_SECRET) as running:
        yield running


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def settings(
    db: Database,
    tmp_path: Path,
    sandbox: Sandbox,
    port: int,
    storage_section: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    monkeypatch.delenv("MAX_CONFIG", raising=False)
    return make_settings(
        db,
        tmp_path,
        server={"public_url": f"http://127.0.0.1:{port}"},
        storage=storage_section,
        whatsapp={
            "app_secret": APP_SECRET,
            "verify_token": "media-verify",
            "access_token": sandbox.access_token,
            "phone_number_id": sandbox.phone_number_id,
            "waba_id": sandbox.waba_id,
            "graph_url": sandbox.graph_url,
            "timeout": 5,
        },
        chat_app={"secret": CHAT_SECRET, "callback_url": ""},
        webhooks={"allow_private_networks": True},
    )


@pytest.fixture
def app(settings: Settings, db: Database) -> FastAPI:
    return create_app(settings, db=db, background=False)


@pytest.fixture
def live(app: FastAPI, port: int) -> Iterator[LiveServer]:
    with LiveServer(app, port=port) as server:
        yield server


@pytest.fixture
def worker(db: Database, settings: Settings, clock: FrozenClock) -> Worker:
    """Runs jobs on demand with the test clock, so retry delays are exact."""
    from max_server.jobs import registry

    registry.load_builtin_handlers()

    def now(_: Session) -> Any:
        return clock.now()

    return Worker(db, settings, concurrency=1, now=now, name="media-test-worker", lease_seconds=60)


class Customer:
    """A WhatsApp (through the sandbox) or Chat App customer sending files to the live server."""

    def __init__(self, live: LiveServer, sandbox: Sandbox, db: Database, clock: FrozenClock) -> None:
        self.live, self.sandbox, self.db, self.clock = live, sandbox, db, clock

    def sends(self, data: bytes, mime_type: str, **options: Any) -> tuple[int, str]:
        """The customer sends a file on WhatsApp; returns (our media row id, Meta's media id)."""
        response, wamid, media_id = self.sandbox.customer_media(
            self.live.url, WA_ID, data, mime_type, ts=self.clock.now().timestamp(), **options
        )
        assert response.status_code == 200, response.text
        return self.media_row(wamid).id, media_id  # type: ignore[return-value]

    def sends_raw(self, kind: str, media_id: str, mime_type: str, sha256: str, **options: Any) -> int:
        """A media message with whatever the test says (e.g. a wrong sha256)."""
        wamid = payloads.new_wamid()
        message = payloads.media_message(
            kind, WA_ID, wamid, media_id, mime_type, sha256, self.clock.now().timestamp(), **options
        )
        change = payloads.messages_change(
            self.sandbox.phone_number_id, [message], [payloads.contact(WA_ID, "Cliente")]
        )
        response = self.sandbox.post_webhook(
            self.live.url, payloads.envelope(self.sandbox.phone_number_id, [change])
        )
        assert response.status_code == 200, response.text
        return self.media_row(wamid).id  # type: ignore[return-value]

    def attaches(self, *attachments: dict[str, Any], message_id: str | None = None) -> list[int]:
        """A Chat App customer sends a message with attachments (by URL); returns the media row ids."""
        message_id = message_id or f"app-{uuid.uuid4().hex[:10]}"
        body = json.dumps(
            {"id": message_id, "customer": {"id": "cust_1", "name": "Ana"}, "attachments": list(attachments)}
        ).encode()
        response = httpx.post(
            self.live.url + "/channels/chat-app/messages",
            content=body,
            headers=signed_headers(CHAT_SECRET, body, now=self.clock.now().timestamp()),
        )
        assert response.status_code in (200, 202), response.text
        with self.db.session(write=False) as session:
            message = session.exec(select(Message).where(Message.channel_message_id == message_id)).one()
            rows = session.exec(
                select(MediaFile).where(MediaFile.message_id == message.id).order_by(col(MediaFile.id))
            ).all()
            return [r.id for r in rows]  # type: ignore[misc]

    def media_row(self, wamid: str) -> MediaFile:
        with self.db.session(write=False) as session:
            message = session.exec(select(Message).where(Message.channel_message_id == wamid)).one()
            return session.exec(select(MediaFile).where(MediaFile.message_id == message.id)).one()


@pytest.fixture
def customer(live: LiveServer, sandbox: Sandbox, db: Database, clock: FrozenClock) -> Customer:
    return Customer(live, sandbox, db, clock)


def media_row(db: Database, media_id: int) -> MediaFile:
    with db.session(write=False) as session:
        row = session.get(MediaFile, media_id)
        assert row is not None
        return row


MediaRow = Callable[[int], MediaFile]


@pytest.fixture
def row(db: Database) -> MediaRow:
    return lambda media_id: media_row(db, media_id)


def blob(size: int, seed: str) -> bytes:
    """Deterministic, incompressible bytes."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def link_for(live: LiveServer, token: str, media_id: int, **params: Any) -> httpx.Response:
    return httpx.get(f"{live.url}/api/v1/media/{media_id}", params=params, headers=bearer(token))
