"""The address guard with its default (``webhooks.allow_private_networks = false``): refused when
subscribing, and again at every attempt (a name may resolve elsewhere later)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from max_server.access import Actor
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.domain.signatures import new_secret
from max_server.errors import Unprocessable
from max_server.jobs import registry
from max_server.jobs.worker import Worker
from max_server.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from max_server.schemas import WebhookSubscriptionCreate
from max_server.services import events, webhook_delivery, webhooks
from max_server.settings import Settings
from tests.conftest import make_settings
from tests.webhooks.conftest import Admin, Receiver, pump

PUBLIC = "93.184.216.34"


@pytest.fixture
def settings(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("MAX_CONFIG", raising=False)
    made = make_settings(db, tmp_path)
    assert made.webhooks.allow_private_networks is False
    return made


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:8080/hooks",  # a name that resolves to loopback
        "http://[::1]/hooks",
        "http://10.0.0.7/hooks",
        "ftp://example.com/hooks",
        "http://user:pw@example.com/hooks",
    ],
)
def test_private_and_odd_urls_are_refused_when_subscribing(admin: Admin, url: str) -> None:
    refused = admin.post("/api/v1/webhooks", json={"url": url, "events": ["*"]})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "webhook_url_refused"
    assert admin.get("/api/v1/webhooks").json()["subscriptions"] == []


def test_a_name_resolving_to_a_private_address_is_refused(settings: Settings) -> None:
    def private(host: str, port: int) -> list[str]:
        return ["192.168.1.20"] if host == "crm.example.test" else [PUBLIC]

    with pytest.raises(Unprocessable) as refused:
        webhooks.check_url("https://crm.example.test/hooks", settings, resolver=private)
    assert "192.168.1.20" in refused.value.message
    assert webhooks.check_url("https://public.example.test/hooks", settings, resolver=private)


def test_every_attempt_checks_the_address_again(
    db: Database, settings: Settings, receiver: Receiver, clock: FrozenClock
) -> None:
    """A subscription stored while private addresses were allowed (or whose name now resolves to
    one): the attempt is refused before any connection, logged, and not retried."""
    registry.load_builtin_handlers()
    with db.session() as session:
        session.add(WebhookSubscription(url=receiver.url, events=["*"], secret=new_secret()))
        events.emit(session, "sla.warning", {"id": "1"}, to=events.audience(everyone=True))
        session.commit()
    worker = Worker(db, settings, concurrency=1, now=lambda _: clock.now(), name="guarded")
    pump(db, worker)
    assert receiver.received == []
    with db.session(write=False) as session:
        [delivery] = session.exec(select(WebhookDelivery)).all()
        [attempt] = session.exec(select(WebhookAttempt)).all()
    assert (delivery.state, delivery.attempts) == ("failed", 1)
    assert attempt.status_code is None and attempt.error is not None
    assert attempt.error.startswith("address refused: 127.0.0.1 resolves to 127.0.0.1")


def test_dns_rebinding_is_caught_at_the_attempt(db: Database, settings: Settings, clock: FrozenClock) -> None:
    """Public when subscribing, private when sending: the checked address is the one used."""
    answers = iter([[PUBLIC], ["169.254.169.254"]])

    def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    with db.session() as session:
        created = webhooks.create(
            session,
            Actor.system("tests"),
            settings,
            WebhookSubscriptionCreate(url="http://rebind.example.test/h", events=["*"]),
            resolver=rebinding,
        )
        events.emit(session, "sla.warning", {"id": "1"}, to=events.audience(everyone=True))
        session.commit()
    from max_server.realtime import Sequencer

    Sequencer(db).run_once()
    with db.session(write=False) as session:
        [delivery] = session.exec(select(WebhookDelivery)).all()
    outcome = webhook_delivery.deliver(db, settings, {"delivery_id": delivery.id, "attempt": 1}, rebinding)
    assert outcome == "stop"
    with db.session(write=False) as session:
        [attempt] = session.exec(select(WebhookAttempt)).all()
    assert attempt.error is not None and "169.254.169.254" in attempt.error
    assert created.subscription.url == "http://rebind.example.test/h"
