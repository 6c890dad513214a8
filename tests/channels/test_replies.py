"""Agent replies through the Graph API sandbox over HTTP: exact request, window, retries,
refusals, order, and a status that beats the send's answer."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select

from max_server.channels.whatsapp.sandbox import Sandbox
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs.worker import Worker
from max_server.models import Job, Message
from max_server.settings import Settings
from tests.channels.conftest import WhatsApp
from tests.conftest import People, bearer
from tests.support.live import LiveServer
from tests.support.sandbox_fixtures import sandbox_fixture, sandbox_graph_url  # noqa: F401

WA = "5215512345678"


@pytest.fixture
def agent(people: People) -> str:
    team = people.team("support")
    user, token = people.user("agent", "Ana")
    people.join(team, user)
    return token


@pytest.fixture
def conversation(
    live: LiveServer, whatsapp: WhatsApp, agent: str, db: Database, clock: FrozenClock
) -> dict[str, Any]:
    from max_server.services import channels

    with db.session() as session:  # new conversations start in the support team
        account = channels.find_account(session, "1122334455667")
        channels.set_default_team(session, _system(), str(account.id), "support")
    whatsapp.text("hola, ¿me ayudan?", wa_id=WA, ts=clock.now().timestamp())
    [found] = httpx.get(live.url + "/api/v1/conversations", headers=bearer(agent)).json()["conversations"]
    return found


def _system() -> Any:
    from max_server.access import Actor

    return Actor.system("tests")


def reply(live: LiveServer, token: str, conversation_id: str, text: str) -> httpx.Response:
    return httpx.post(
        f"{live.url}/api/v1/conversations/{conversation_id}/messages",
        json={"text": text},
        headers=bearer(token),
    )


def message(db: Database, message_id: str) -> Message:
    with db.session(write=False) as session:
        found = session.get(Message, int(message_id))
        assert found is not None
        return found


def test_a_reply_inside_the_window_is_sent_exactly(
    live: LiveServer, sandbox: Sandbox, worker: Worker, conversation: dict[str, Any], agent: str, db: Database
) -> None:
    response = reply(live, agent, conversation["id"], "¡Claro! ¿En qué te ayudo?")
    assert response.status_code == 201
    queued = response.json()
    assert (queued["delivery_status"], queued["direction"], queued["sender"]["name"]) == (
        "pending",
        "outbound",
        "Ana",
    )
    worker.drain()
    [sent] = sandbox.sent_messages()
    assert sent == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+" + WA,
        "type": "text",
        "text": {"preview_url": False, "body": "¡Claro! ¿En qué te ayudo?"},
        "biz_opaque_callback_data": f"max:{queued['id']}",  # Meta echoes it in statuses
    }
    [request] = [r for r in sandbox.requests if r.path.endswith("/messages")]
    assert request.headers["authorization"] == "Bearer sandbox-token"
    stored = message(db, queued["id"])
    assert stored.delivery_status == "sent"
    assert stored.channel_message_id is not None and stored.channel_message_id.startswith("wamid.")
    after = httpx.get(f"{live.url}/api/v1/conversations/{conversation['id']}", headers=bearer(agent)).json()
    assert after["first_response_at"] is not None
    assert (after["status"], after["assignee"]["name"]) == ("assigned", "Ana")  # replying took it


def test_free_text_after_24_hours_is_refused(
    live: LiveServer, sandbox: Sandbox, conversation: dict[str, Any], agent: str, clock: FrozenClock
) -> None:
    clock.advance(hours=23, minutes=59)
    assert reply(live, agent, conversation["id"], "aún a tiempo").status_code == 201
    clock.advance(minutes=2)
    refused = reply(live, agent, conversation["id"], "demasiado tarde")
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "whatsapp_window_closed"
    from datetime import datetime

    last = datetime.fromisoformat(conversation["last_customer_message_at"])
    assert datetime.fromisoformat(error["details"]["window_expires_at"]) == last + timedelta(hours=24)
    shown = httpx.get(f"{live.url}/api/v1/conversations/{conversation['id']}", headers=bearer(agent)).json()
    assert shown["window_open"] is False


def test_a_graph_500_is_retried_with_backoff(
    live: LiveServer,
    sandbox: Sandbox,
    worker: Worker,
    db: Database,
    conversation: dict[str, Any],
    agent: str,
    clock: FrozenClock,
) -> None:
    sandbox.fail_next(2, status=500)
    queued = reply(live, agent, conversation["id"], "hola").json()
    worker.drain()
    assert message(db, queued["id"]).delivery_status == "pending"
    with db.session(write=False) as session:
        job = session.exec(select(Job).where(Job.kind == "whatsapp.send")).one()
    assert job.state == "queued" and job.run_at is not None and "500" in (job.last_error or "")
    for _ in range(2):
        clock.advance(minutes=20)
        worker.drain()
    assert message(db, queued["id"]).delivery_status == "sent"
    assert len(sandbox.sent_messages()) == 3  # two refused, one accepted
    assert len(sandbox.sent_messages(accepted_only=True)) == 1


def test_meta_s_refusal_131047_is_shown_on_the_message(
    live: LiveServer, sandbox: Sandbox, worker: Worker, db: Database, conversation: dict[str, Any], agent: str
) -> None:
    sandbox.refuse_next(131047)
    queued = reply(live, agent, conversation["id"], "hola").json()
    worker.drain()
    failed = message(db, queued["id"])
    assert failed.delivery_status == "failed"
    assert failed.error is not None
    assert (failed.error["code"], failed.error["title"]) == (131047, "Re-engagement message")
    shown = httpx.get(
        f"{live.url}/api/v1/conversations/{conversation['id']}/messages", headers=bearer(agent)
    ).json()
    assert shown["messages"][-1]["error"]["code"] == 131047
    assert (
        httpx.get(f"{live.url}/api/v1/conversations/{conversation['id']}", headers=bearer(agent)).json()[
            "window_open"
        ]
        is False
    )


def test_three_quick_replies_arrive_in_order(
    live: LiveServer,
    sandbox: Sandbox,
    worker: Worker,
    settings: Settings,
    conversation: dict[str, Any],
    agent: str,
) -> None:
    """Three workers that claim one job at a time race for the sends while Meta answers each
    slowly: the per-conversation order holds the second send until the first is answered."""
    texts = ["uno", "dos", "tres"]
    for _ in texts:
        sandbox.delay_next(0.4)
    for text in texts:
        assert reply(live, agent, conversation["id"], text).status_code == 201
    one_at_a_time = settings.model_copy(update={"jobs": settings.jobs.model_copy(update={"claim_batch": 1})})
    workers = [
        Worker(worker.db, one_at_a_time, concurrency=1, now=worker.now, name=f"w{n}", lease_seconds=60)
        for n in range(3)
    ]
    for each in workers:
        each.start()
    try:
        deadline = time.monotonic() + 30
        while len(sandbox.answered()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for each in workers:
            each.stop()
    sends = [r for r in sandbox.requests if r.path.endswith("/messages")]
    assert [r.json["text"]["body"] for r in sends] == texts
    answered = sandbox.answered()
    assert [wamid for wamid, _ in answered] == [wamid for wamid, _ in sandbox.accepted()]
    for n in range(len(texts) - 1):
        # Request n+1 reached Meta only after Meta had answered request n.
        assert sends[n + 1].received_at > answered[n][1], (n, sends[n + 1].received_at, answered[n][1])


def test_a_message_is_sending_while_its_graph_call_is_in_flight(
    live: LiveServer, sandbox: Sandbox, worker: Worker, db: Database, conversation: dict[str, Any], agent: str
) -> None:
    seen: list[str] = []

    def look_while_meta_holds_the_call(wamid: str) -> None:
        thread = httpx.get(
            f"{live.url}/api/v1/conversations/{conversation['id']}/messages", headers=bearer(agent)
        ).json()["messages"]
        seen.append(thread[-1]["delivery_status"])

    sandbox.before_send_answer(look_while_meta_holds_the_call)
    queued = reply(live, agent, conversation["id"], "un momento").json()
    assert queued["delivery_status"] == "pending"
    worker.drain()
    assert sandbox.hook_errors == []
    assert seen == ["sending"]
    assert message(db, queued["id"]).delivery_status == "sent"


def test_a_status_that_arrives_before_the_send_s_answer_is_applied(
    live: LiveServer, sandbox: Sandbox, worker: Worker, db: Database, conversation: dict[str, Any], agent: str
) -> None:
    sandbox.before_send_answer(lambda wamid: sandbox.status_update(live.url, wamid, "delivered", WA))
    queued = reply(live, agent, conversation["id"], "rápido").json()
    worker.drain()
    assert sandbox.hook_errors == []
    assert message(db, queued["id"]).delivery_status == "delivered"


def test_no_answer_from_meta_marks_the_message_unknown_and_never_resends(
    live: LiveServer,
    sandbox: Sandbox,
    worker: Worker,
    db: Database,
    conversation: dict[str, Any],
    agent: str,
    clock: FrozenClock,
) -> None:
    sandbox.delay_next(8)  # longer than whatsapp.timeout (5 s)
    queued = reply(live, agent, conversation["id"], "¿llegó?").json()
    worker.drain()
    lost = message(db, queued["id"])
    assert lost.delivery_status == "unknown"
    assert lost.error is not None and "may or may not" in lost.error["message"]
    clock.advance(hours=1)
    worker.drain()
    assert len(sandbox.sent_messages()) == 1


def test_a_worker_lost_mid_send_leaves_the_message_unknown(
    live: LiveServer,
    sandbox: Sandbox,
    worker: Worker,
    db: Database,
    conversation: dict[str, Any],
    agent: str,
    clock: FrozenClock,
) -> None:
    from max_server.jobs import queue

    queued = reply(live, agent, conversation["id"], "hola").json()
    with db.session() as session:  # a worker claims the job, marks the message sending, and dies
        queue.claim(session, "dead-worker", clock.now(), 30)
        stored = session.get(Message, int(queued["id"]))
        assert stored is not None
        stored.delivery_status = "sending"
        session.add(stored)
        session.commit()
    clock.advance(seconds=31)
    worker.drain()
    assert message(db, queued["id"]).delivery_status == "unknown"
    assert sandbox.sent_messages() == []


def test_a_message_marked_unknown_learns_its_fate_from_meta_s_status(
    live: LiveServer, sandbox: Sandbox, worker: Worker, db: Database, conversation: dict[str, Any], agent: str
) -> None:
    """The answer to the send is lost (timeout), so MAX never learns the wamid; Meta did accept
    it, and its status webhook echoes the callback data the send carried."""
    sandbox.delay_next(5.5)  # accepted, but only after whatsapp.timeout (5 s)
    queued = reply(live, agent, conversation["id"], "¿llegó?").json()
    worker.drain()
    lost = message(db, queued["id"])
    assert (lost.delivery_status, lost.channel_message_id) == ("unknown", None)
    deadline = time.monotonic() + 15
    while not sandbox.accepted() and time.monotonic() < deadline:
        time.sleep(0.05)
    [(wamid, body)] = sandbox.accepted()
    assert body["biz_opaque_callback_data"] == f"max:{queued['id']}"
    answer = sandbox.status_update(live.url, wamid, "delivered", WA)
    assert answer.status_code == 200 and answer.json()["received"] == {"status_applied": 1}
    shown = httpx.get(
        f"{live.url}/api/v1/conversations/{conversation['id']}/messages", headers=bearer(agent)
    ).json()["messages"][-1]
    assert (shown["id"], shown["delivery_status"], shown["error"]) == (queued["id"], "delivered", None)
    assert message(db, queued["id"]).channel_message_id == wamid
    sandbox.status_update(live.url, wamid, "read", WA)  # later statuses find it by its wamid
    assert message(db, queued["id"]).delivery_status == "read"
