"""A status webhook and the send job's answer racing on PostgreSQL (two real sessions).

Without serialization on the wamid, each transaction misses the other's uncommitted row: the
status waits in ``pending_statuses`` forever and the message stays ``sent``. Both sides take
the wamid's lock first, so whichever commits second sees the first."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import select

from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.models import Message, PendingStatus
from max_server.services import outbound, statuses
from tests.support import factories

pytestmark = pytest.mark.postgres_only


def sending_message(db: Database) -> Message:
    conversation = factories.conversation(db)
    return factories.message(
        db,
        conversation,
        "respuesta",
        direction="outbound",
        sender_type="agent",
        channel_message_id=None,
        delivery_status="sending",
    )


def wait_for_advisory_waiter(db: Database, other: threading.Thread, timeout: float = 20.0) -> None:
    """Returns once another session of this database waits on an advisory lock, or once the
    ``other`` transaction finished without waiting (as it did before the fix)."""
    deadline = time.monotonic() + timeout
    with db.engine.connect() as connection:
        while time.monotonic() < deadline and other.is_alive():
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
                )
            ).scalar_one()
            connection.rollback()
            if waiting:
                return
            time.sleep(0.02)


def final_state(db: Database, message: Message) -> tuple[str, str | None, list[str]]:
    with db.session(write=False) as session:
        found = session.get(Message, message.id)
        assert found is not None
        left = [p.status for p in session.exec(select(PendingStatus))]
    return found.delivery_status, found.channel_message_id, left


def test_a_status_committing_while_the_send_records_the_wamid_is_applied(
    postgres_db: Database, clock: FrozenClock
) -> None:
    db = postgres_db
    message = sending_message(db)
    errors: list[BaseException] = []

    def send_answer() -> None:
        try:
            outbound.sent(db, message.id, "wamid.RACE1")  # type: ignore[arg-type]
        except BaseException as exc:  # reported below
            errors.append(exc)

    with db.session() as webhook:  # the status webhook's transaction, not committed yet
        outcome = statuses.apply(
            webhook, "whatsapp", "wamid.RACE1", "delivered", clock.now(), [], {}, clock.now()
        )
        assert outcome == "pending"
        webhook.flush()
        sender = threading.Thread(target=send_answer)
        sender.start()
        wait_for_advisory_waiter(db, sender)  # the send's transaction waits for the webhook's
        webhook.commit()
    sender.join(timeout=30)
    assert not sender.is_alive() and errors == []
    assert final_state(db, message) == ("delivered", "wamid.RACE1", [])


def test_a_status_arriving_while_the_send_commits_its_wamid_is_applied(
    postgres_db: Database, clock: FrozenClock
) -> None:
    db = postgres_db
    message = sending_message(db)
    result: dict[str, Any] = {}

    def status_webhook() -> None:
        try:
            with db.session() as webhook:
                failure = [{"code": 131026, "title": "Message undeliverable"}]
                result["outcome"] = statuses.apply(
                    webhook, "whatsapp", "wamid.RACE2", "failed", clock.now(), failure, {}, clock.now()
                )
                webhook.commit()
        except BaseException as exc:  # reported below
            result["error"] = exc

    with db.session() as send:  # the send job recording Meta's answer, not committed yet
        outbound.record_sent(send, message.id, "wamid.RACE2")  # type: ignore[arg-type]
        webhook_thread = threading.Thread(target=status_webhook)
        webhook_thread.start()
        wait_for_advisory_waiter(db, webhook_thread)  # the webhook waits to look the wamid up
        send.commit()
    webhook_thread.join(timeout=30)
    assert not webhook_thread.is_alive() and "error" not in result
    assert result["outcome"] == "applied"
    status, wamid, left = final_state(db, message)
    assert (status, wamid, left) == ("failed", "wamid.RACE2", [])
