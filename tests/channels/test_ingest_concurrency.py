"""Concurrent redeliveries and first messages on PostgreSQL, over HTTP."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import func, select

from max_server.app import create_app
from max_server.channels.whatsapp import payloads as p
from max_server.db import Database
from max_server.models import Conversation, Customer, Message
from tests.channels.conftest import APP_SECRET, PHONE_NUMBER_ID
from tests.conftest import make_settings
from tests.support.live import LiveServer


@pytest.fixture
def pg_server(postgres_db: Database, tmp_path: Path) -> Iterator[LiveServer]:
    settings = make_settings(
        postgres_db, tmp_path, whatsapp={"app_secret": APP_SECRET, "phone_number_id": PHONE_NUMBER_ID}
    )
    with LiveServer(create_app(settings, db=postgres_db, background=False)) as server:
        yield server


def blast(url: str, bodies: list[bytes]) -> Counter[int]:
    barrier = threading.Barrier(len(bodies))
    codes: Counter[int] = Counter()
    lock = threading.Lock()

    def post(raw: bytes) -> None:
        with httpx.Client(timeout=60) as client:
            barrier.wait()
            code = client.post(
                url + "/webhooks/whatsapp",
                content=raw,
                headers={"X-Hub-Signature-256": p.sign(raw, APP_SECRET)},
            ).status_code
        with lock:
            codes[code] += 1

    threads = [threading.Thread(target=post, args=(raw,)) for raw in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return codes


def counts(db: Database) -> tuple[int, int, int]:
    with db.session(write=False) as session:
        return tuple(
            int(session.exec(select(func.count()).select_from(m)).one())
            for m in (Message, Conversation, Customer)
        )  # type: ignore[return-value]


def test_fifty_concurrent_deliveries_of_one_wamid_store_one_message(
    pg_server: LiveServer, postgres_db: Database
) -> None:
    raw = p.encode(p.text_webhook(PHONE_NUMBER_ID, "5215511111111", "wamid.SAME", "hola"))
    codes = blast(pg_server.url, [raw] * 50)
    assert codes == Counter({200: 50})
    assert counts(postgres_db) == (1, 1, 1)


def test_twenty_concurrent_first_messages_open_one_conversation(
    pg_server: LiveServer, postgres_db: Database
) -> None:
    bodies = [
        p.encode(p.text_webhook(PHONE_NUMBER_ID, "5215522222222", f"wamid.N{n}", f"mensaje {n}"))
        for n in range(20)
    ]
    codes = blast(pg_server.url, bodies)
    assert codes == Counter({200: 20})
    assert counts(postgres_db) == (20, 1, 1)
    with postgres_db.session(write=False) as session:
        numbers = list(session.exec(select(Conversation.number)))
    assert len(numbers) == 1
