"""What an inbound message means for its conversation: late redeliveries, system messages and
the 24 h window, Meta's older number-change shape, and one bad item in a webhook."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select

from max_server.channels.whatsapp import payloads as p
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.models import Conversation, CustomerIdentity, InboundEvent, Message
from max_server.services import inbound
from tests.channels.conftest import PHONE_NUMBER_ID, WhatsApp
from tests.conftest import People, bearer
from tests.support.live import LiveServer

WA = "5215512345678"


@pytest.fixture
def admin(people: People) -> str:
    return people.user("admin")[1]


def get(live: LiveServer, token: str, path: str, **params: Any) -> Any:
    response = httpx.get(live.url + path, params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


def conversations(live: LiveServer, token: str) -> list[dict[str, Any]]:
    return list(get(live, token, "/api/v1/conversations", status="all")["conversations"])


def test_a_late_redelivery_from_before_the_close_stays_in_the_closed_conversation(
    live: LiveServer, whatsapp: WhatsApp, admin: str, clock: FrozenClock, db: Database
) -> None:
    written = clock.now()
    whatsapp.text("hola", ts=written.timestamp())
    [opened] = conversations(live, admin)
    clock.advance(minutes=1)
    late = p.new_wamid()  # written before the close; Meta delivers it only after
    clock.advance(minutes=4)
    closed = httpx.post(
        f"{live.url}/api/v1/conversations/{opened['id']}/close",
        json={"reason": "resolved"},
        headers=bearer(admin),
    )
    assert closed.status_code == 200
    clock.advance(minutes=10)
    whatsapp.text("¿y lo otro?", wamid=late, ts=(written + timedelta(minutes=1)).timestamp())
    [after] = conversations(live, admin)
    assert (after["id"], after["status"], after["cycle"]) == (opened["id"], "closed", 1)
    thread = get(live, admin, f"/api/v1/conversations/{opened['id']}/messages")["messages"]
    assert [m["content_text"] for m in thread] == ["hola", "¿y lo otro?"]
    # Something written after the close still reopens it (within routing.reopen_window).
    whatsapp.text("una cosa más", ts=clock.now().timestamp())
    [reopened] = conversations(live, admin)
    assert (reopened["id"], reopened["status"], reopened["cycle"]) == (opened["id"], "queued", 2)


def test_system_messages_do_not_open_the_24_hour_window(
    live: LiveServer, whatsapp: WhatsApp, admin: str, clock: FrozenClock
) -> None:
    whatsapp.text("hola", wa_id="5215500000001", ts=clock.now().timestamp())
    before = conversations(live, admin)[0]["last_customer_message_at"]
    clock.advance(hours=25)
    whatsapp.message(
        p.system_number_change("5215500000001", "5215599999999", p.new_wamid(), clock.now().timestamp()),
        wa_id="5215500000001",
    )
    whatsapp.message(
        p.system_identity_change("5215599999999", p.new_wamid(), clock.now().timestamp()),
        wa_id="5215599999999",
    )
    [conversation] = conversations(live, admin)
    assert conversation["last_customer_message_at"] == before
    assert conversation["window_open"] is False
    thread = get(live, admin, f"/api/v1/conversations/{conversation['id']}/messages")["messages"]
    assert [m["sender_type"] for m in thread] == ["customer", "system", "system"]
    refused = httpx.post(
        f"{live.url}/api/v1/conversations/{conversation['id']}/messages",
        json={"text": "hola"},
        headers=bearer(admin),
    )
    assert refused.json()["error"]["code"] == "whatsapp_window_closed"


def test_a_number_change_in_meta_s_older_shape_moves_the_identity(
    whatsapp: WhatsApp, db: Database, clock: FrozenClock
) -> None:
    ts = clock.now().timestamp()
    whatsapp.text("hola", wa_id="5215500000001", ts=ts)
    change = p.system_number_change("5215500000001", "5215599999999", p.new_wamid(), ts, legacy=True)
    assert change["system"]["new_wa_id"] == "5215599999999" and "wa_id" not in change["system"]
    whatsapp.message(change, wa_id="5215500000001")
    whatsapp.text("ya con número nuevo", wa_id="5215599999999", ts=ts)
    with db.session(write=False) as session:
        identities = [i.external_id for i in session.exec(select(CustomerIdentity))]
        conversation_count = len(list(session.exec(select(Conversation))))
    assert identities == ["5215599999999"]
    assert conversation_count == 1


@pytest.fixture
def poison_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    """A message hook that fails for one text, as a bug or a refused value would (fault injection:
    no real payload can make the hardened ingest fail on both databases)."""

    def poison(session: Any, stored: inbound.Ingested, settings: Any, now: Any) -> None:
        if stored.message.content_text == "veneno":
            raise ValueError("this item cannot be stored")

    monkeypatch.setattr(inbound, "_message_hooks", [*inbound._message_hooks, (99, "tests.poison", poison)])


def test_one_poisonous_item_is_kept_raw_and_the_rest_of_the_webhook_commits(
    live: LiveServer, whatsapp: WhatsApp, admin: str, db: Database, clock: FrozenClock, poison_hook: None
) -> None:
    ts = clock.now().timestamp()
    good, bad, after = p.new_wamid(), p.new_wamid(), p.new_wamid()
    messages = [p.text(WA, good, "hola", ts), p.text(WA, bad, "veneno", ts), p.text(WA, after, "adiós", ts)]
    change = p.messages_change(PHONE_NUMBER_ID, messages, [p.contact(WA, "Juan")])
    response = whatsapp.post(p.envelope(PHONE_NUMBER_ID, [change]))
    assert response.status_code == 200, response.text
    assert response.json()["received"] == {"stored": 2, "kept_failed": 1}
    [conversation] = conversations(live, admin)
    thread = get(live, admin, f"/api/v1/conversations/{conversation['id']}/messages")["messages"]
    assert [m["channel_message_id"] for m in thread] == [good, after]
    with db.session(write=False) as session:
        [kept] = session.exec(select(InboundEvent))
        assert session.exec(select(Message).where(Message.channel_message_id == bad)).first() is None
    assert kept.kind == "failed:InboundMessage"
    assert kept.payload["message"] == messages[1]
    assert kept.payload["error"] == "ValueError: this item cannot be stored"
    # Meta's redelivery of the same webhook creates nothing twice (the bad item is kept again).
    again = whatsapp.post(p.envelope(PHONE_NUMBER_ID, [change]))
    assert again.json()["received"] == {"duplicate": 2, "kept_failed": 1}
