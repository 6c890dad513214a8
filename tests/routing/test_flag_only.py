"""``rate_limits.block_minutes = 0``: messages over a limit are still held and flagged, but nothing
is blocked (each message is judged by the windows alone), and supervisors hear once per window
that tripped, not once per held message."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.models import CustomerBlock, Message, Notification
from max_server.services.rate_limits import FLAG
from max_server.settings import Settings
from tests.channels.conftest import APP_SECRET, PHONE_NUMBER_ID, WhatsApp
from tests.conftest import People, make_settings

WA = "5215599990000"


@pytest.fixture
def settings(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("MAX_CONFIG", raising=False)
    return make_settings(
        db,
        tmp_path,
        whatsapp={"app_secret": APP_SECRET, "phone_number_id": PHONE_NUMBER_ID},
        rate_limits={"block_minutes": 0},
    )


def test_zero_block_minutes_flags_without_blocking_and_notifies_once_per_window(
    whatsapp: WhatsApp, db: Database, people: People, clock: FrozenClock
) -> None:
    people.user("admin")
    start = clock.now() - timedelta(minutes=10)
    for n in range(25):  # 20 pass, 5 held: one window tripped
        whatsapp.text(f"a{n}", wa_id=WA, ts=(start + timedelta(seconds=n)).timestamp())
    # 61 s after the first: the window has room again (no block holds it) ...
    whatsapp.text("room again", wa_id=WA, ts=(start + timedelta(seconds=61)).timestamp())
    # ... and a new burst two minutes later trips a new window: a second notification.
    for n in range(22):
        whatsapp.text(f"b{n}", wa_id=WA, ts=(start + timedelta(minutes=3, seconds=n)).timestamp())
    with db.session(write=False) as session:
        messages = session.exec(select(Message).order_by(col(Message.id)))
        held = {m.content_text: FLAG in m.flags for m in messages}
        records = list(session.exec(select(CustomerBlock).order_by(col(CustomerBlock.id))))
        notes = list(session.exec(select(Notification).where(Notification.kind == "customer.rate_limited")))
    assert [k for k, v in held.items() if v] == [f"a{n}" for n in range(20, 25)] + ["b20", "b21"]
    assert held["room again"] is False
    assert [(r.kind, r.held_count) for r in records] == [("flag_only", 5), ("flag_only", 2)]
    assert records[0].starts_at == start + timedelta(seconds=20)
    assert records[0].until == start + timedelta(seconds=80)  # the minute that tripped
    assert len(notes) == 2  # once per window, not once per held message (7)
