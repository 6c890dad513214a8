"""Several WhatsApp numbers: each webhook joins its own account, each reply leaves from the
number its conversation came in on; a number MAX added from a webhook can be completed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from max_server.channels.whatsapp import payloads as p
from max_server.channels.whatsapp.sandbox import Sandbox
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs.worker import Worker
from max_server.models import AuditEntry, ChannelAccount, Conversation, CustomerIdentity
from tests.channels.conftest import APP_SECRET, PHONE_NUMBER_ID, WhatsApp
from tests.conftest import People, bearer
from tests.support.live import LiveServer
from tests.support.processes import ServerProcess
from tests.support.sandbox_fixtures import sandbox_graph_url  # noqa: F401

WA = "5215512345678"
SECOND = "106540352242922"  # another number of the same WABA, never configured in MAX


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(app_secret=APP_SECRET, access_token="sandbox-token") as running:
        running.add_phone_number(SECOND)
        yield running


@pytest.fixture
def admin(people: People) -> str:
    return people.user("admin")[1]


def text_on(whatsapp: WhatsApp, phone_number_id: str, body: str, ts: float) -> str:
    wamid = p.new_wamid()
    change = p.messages_change(
        phone_number_id,
        [p.text(WA, wamid, body, ts)],
        [p.contact(WA, "Juan")],
        display_phone_number="15550001111",
    )
    response = whatsapp.post(p.envelope(phone_number_id, [change]))
    assert response.status_code == 200, response.text
    return wamid


def test_each_number_has_its_own_conversation_and_replies_leave_from_it(
    live: LiveServer,
    whatsapp: WhatsApp,
    sandbox: Sandbox,
    worker: Worker,
    admin: str,
    db: Database,
    clock: FrozenClock,
) -> None:
    ts = clock.now().timestamp()
    text_on(whatsapp, PHONE_NUMBER_ID, "hola al número principal", ts)
    text_on(whatsapp, SECOND, "hola al otro número", ts)
    with db.session(write=False) as session:
        by_number = {
            account.external_id: [
                c.id
                for c in session.exec(
                    select(Conversation).where(Conversation.channel_account_id == account.id)
                )
            ]
            for account in session.exec(select(ChannelAccount))
        }
    assert set(by_number) == {PHONE_NUMBER_ID, SECOND, "default"}  # "default": the Chat App
    [main], [other] = by_number[PHONE_NUMBER_ID], by_number[SECOND]
    assert main != other  # one customer, one open conversation per number
    for conversation_id, text in ((other, "desde el otro"), (main, "desde el principal")):
        thread = httpx.get(
            f"{live.url}/api/v1/conversations/{conversation_id}/messages", headers=bearer(admin)
        ).json()["messages"]
        assert len(thread) == 1
        sent = httpx.post(
            f"{live.url}/api/v1/conversations/{conversation_id}/messages",
            json={"text": text},
            headers=bearer(admin),
        )
        assert sent.status_code == 201, sent.text
    worker.drain()
    sends = [(r.path, r.json["text"]["body"]) for r in sandbox.requests if r.path.endswith("/messages")]
    assert sends == [
        (f"/v23.0/{SECOND}/messages", "desde el otro"),
        (f"/v23.0/{PHONE_NUMBER_ID}/messages", "desde el principal"),
    ]
    assert len(sandbox.accepted()) == 2


def test_a_number_added_from_its_first_webhook_is_completed_with_update(
    live: LiveServer, whatsapp: WhatsApp, admin: str, people: People, db: Database, clock: FrozenClock
) -> None:
    people.team("sales")
    text_on(whatsapp, SECOND, "hola", clock.now().timestamp())
    shown = httpx.get(f"{live.url}/api/v1/channels/{SECOND}", headers=bearer(admin)).json()
    assert (shown["waba_id"], shown["display_number"], shown["name"]) == (
        p.DEFAULT_WABA_ID,
        "15550001111",
        "15550001111",
    )
    again = httpx.post(
        f"{live.url}/api/v1/channels/whatsapp", json={"phone_number_id": SECOND}, headers=bearer(admin)
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "channel_exists"
    assert f"max channels update {SECOND}" in again.json()["error"]["message"]
    changes = {"name": "Ventas", "waba_id": "999000111", "display_number": "+52 55 0000 1111"}
    updated = httpx.patch(f"{live.url}/api/v1/channels/{SECOND}", json=changes, headers=bearer(admin))
    assert updated.status_code == 200, updated.text
    assert {k: updated.json()[k] for k in changes} == changes
    team = httpx.put(
        f"{live.url}/api/v1/channels/{SECOND}/default-team", json={"team": "sales"}, headers=bearer(admin)
    )
    assert team.json()["default_team"]["slug"] == "sales"
    cleared = httpx.patch(f"{live.url}/api/v1/channels/{SECOND}", json={"waba_id": ""}, headers=bearer(admin))
    assert cleared.json()["waba_id"] is None
    empty_name = httpx.patch(
        f"{live.url}/api/v1/channels/{SECOND}", json={"name": " "}, headers=bearer(admin)
    )
    assert (empty_name.status_code, empty_name.json()["error"]["code"]) == (422, "invalid_name")
    _, agent = people.user("agent")
    denied = httpx.patch(f"{live.url}/api/v1/channels/{SECOND}", json={"name": "x"}, headers=bearer(agent))
    assert denied.status_code == 403
    with db.session(write=False) as session:
        audited = [
            a.data for a in session.exec(select(AuditEntry).where(AuditEntry.action == "channel.updated"))
        ]
    assert audited == [
        {
            "name": {"from": "15550001111", "to": "Ventas"},
            "waba_id": {"from": p.DEFAULT_WABA_ID, "to": "999000111"},
            "display_number": {"from": "15550001111", "to": "+52 55 0000 1111"},
        },
        {"waba_id": {"from": "999000111", "to": None}},
    ]


def test_channels_are_listed_page_by_page(live: LiveServer, admin: str) -> None:
    for n in range(5):
        added = httpx.post(
            f"{live.url}/api/v1/channels/whatsapp",
            json={"phone_number_id": f"10000000000{n}"},
            headers=bearer(admin),
        )
        assert added.status_code == 201
    seen: list[str] = []
    cursor: Any = None
    pages = 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{live.url}/api/v1/channels", params=params, headers=bearer(admin)).json()
        assert len(page["channels"]) <= 2
        seen += [c["external_id"] for c in page["channels"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # The configured number and the Chat App come first (made at start-up), then the five.
    assert seen[-5:] == [f"10000000000{n}" for n in range(5)]
    assert len(seen) == len(set(seen)) == 7 and pages == 4
    bad = httpx.get(f"{live.url}/api/v1/channels", params={"limit": 0}, headers=bearer(admin))
    assert bad.status_code == 422


def test_a_default_team_set_through_one_process_applies_in_the_others(
    postgres_db: Database, tmp_path: Path
) -> None:
    """Each process keeps the accounts its webhooks used (no query per message); a change made
    through another process reaches it at commit (LISTEN/NOTIFY), so its next new conversation
    starts in the new default team."""
    people = People(postgres_db)
    _, admin = people.user("admin")
    sales = people.team("sales")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{postgres_db.url}"\n[storage]\npath = "{tmp_path}/media"\n'
        f'[whatsapp]\napp_secret = "{APP_SECRET}"\nphone_number_id = "{PHONE_NUMBER_ID}"\n'
        "[jobs]\nenabled = false\n"
    )
    (tmp_path / "home").mkdir()
    ingesting, admin_side = (ServerProcess(config, tmp_path / "home").start() for _ in range(2))
    sent = 0

    def new_conversation_team() -> int | None:
        nonlocal sent
        sent += 1
        wa_id = f"52155000{sent:05d}"
        raw = p.encode(p.text_webhook(PHONE_NUMBER_ID, wa_id, f"wamid.team.{sent}", "hola"))
        headers = {"X-Hub-Signature-256": p.sign(raw, APP_SECRET)}
        response = httpx.post(ingesting.url + "/webhooks/whatsapp", content=raw, headers=headers)
        assert response.status_code == 200, response.text
        with postgres_db.session(write=False) as session:
            return session.exec(
                select(Conversation.team_id)
                .join(CustomerIdentity, col(CustomerIdentity.customer_id) == Conversation.customer_id)
                .where(CustomerIdentity.external_id == wa_id)
            ).one()

    try:
        assert [new_conversation_team(), new_conversation_team()] == [None, None]  # the second: its copy
        moved = httpx.put(
            f"{admin_side.url}/api/v1/channels/{PHONE_NUMBER_ID}/default-team",
            json={"team": "sales"},
            headers=bearer(admin),
        )
        assert moved.status_code == 200, moved.text
        deadline = time.monotonic() + 10  # the notification travels on its own connection
        while (team := new_conversation_team()) != sales.id:
            assert team is None and time.monotonic() < deadline, "the change never reached the process"
            time.sleep(0.05)
    finally:
        ingesting.terminate()
        admin_side.terminate()
