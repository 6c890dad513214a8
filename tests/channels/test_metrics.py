"""``/metrics``: what operators watch, counted where it happens."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from max_server.channels.whatsapp import payloads as p
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs.worker import Worker
from max_server.realtime import Sequencer
from max_server.settings import Settings
from tests.channels.conftest import PHONE_NUMBER_ID, WhatsApp
from tests.conftest import People, bearer
from tests.sla.desk import Desk
from tests.support.live import LiveServer, free_port
from tests.support.processes import ServerProcess
from tests.support.receiver import Receiver

T = TypeVar("T")


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(live: LiveServer, token: str | None = None) -> Samples:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(live.url + "/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    found: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_webhooks_jobs_and_lag_are_counted(live: LiveServer, whatsapp: WhatsApp, clock: FrozenClock) -> None:
    before = scrape(live)
    whatsapp.text("hola", ts=clock.now().timestamp())
    sha = p.sha256_b64(b"x")
    whatsapp.message(
        p.image("5215512345678", p.new_wamid(), "m1", "image/jpeg", sha, clock.now().timestamp())
    )
    refused = whatsapp.post_raw(
        p.encode(p.text_webhook(PHONE_NUMBER_ID, "1", "wamid.x", "x")), signature="sha256=00"
    )
    assert refused.status_code == 401
    after = scrape(live)
    assert (
        value(after, "max_webhooks_received_total", channel="whatsapp", outcome="accepted")
        == value(before, "max_webhooks_received_total", channel="whatsapp", outcome="accepted") + 2
    )
    assert value(after, "max_webhooks_received_total", channel="whatsapp", outcome="invalid_signature") >= 1
    assert value(after, "max_ingest_seconds_count", channel="whatsapp") >= 2
    # Jobs waiting (the image's download; no worker runs here) are visible by kind and state.
    assert value(after, "max_jobs", kind="media.download", state="queued") == 1
    assert ("max_events_lag", (("stage", "unsequenced"),)) in after
    assert value(after, "max_http_requests_total", method="POST", status="2xx") >= 1


def test_a_metrics_token_guards_the_endpoint(live: LiveServer, app: FastAPI, settings: Settings) -> None:
    app.state.settings = settings.model_copy(
        update={"server": settings.server.model_copy(update={"metrics_token": "scrape-me-please"})}
    )
    assert httpx.get(live.url + "/metrics").status_code == 401
    assert httpx.get(live.url + "/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert scrape(live, "scrape-me-please")


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def eventually(probe: Callable[[], T | None], timeout: float = 15.0, what: str = "it") -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.05)


def test_deliveries_are_counted_by_outcome(
    live: LiveServer, whatsapp: WhatsApp, worker: Worker, db: Database, people: People, clock: FrozenClock
) -> None:
    """Four receivers of one event: 503 then 200 (a retry, then a success), 400 (stop) and 410
    (gone). Each attempt counts once under its outcome."""
    _, admin = people.user("admin")
    receivers = {name: Receiver() for name in ("retry", "stop", "gone")}
    receivers["retry"].answer_next(503, 200)
    receivers["stop"].answer_next(400)
    receivers["gone"].answer_next(410)
    for receiver in receivers.values():
        receiver.server.start()
    try:
        for receiver in receivers.values():
            hook = httpx.post(
                live.url + "/api/v1/webhooks",
                json={"url": receiver.url + "/hooks", "events": ["message.created"]},
                headers=bearer(admin),
            )
            assert hook.status_code == 201, hook.text
        before = scrape(live)
        whatsapp.text("hola", ts=clock.now().timestamp())
        Sequencer(db).run_once()
        worker.drain()  # the first attempts
        clock.advance(timedelta(seconds=6))  # the retry is due 5 s later
        worker.drain()
        after = scrape(live)
    finally:
        for receiver in receivers.values():
            receiver.server.stop()
    assert [len(r.received) for r in receivers.values()] == [2, 1, 1]
    counted = {
        outcome: delta(before, after, "max_webhook_deliveries_total", outcome=outcome)
        for outcome in ("success", "retry", "stop", "gone")
    }
    assert counted == {"success": 1, "retry": 1, "stop": 1, "gone": 1}


def test_sla_warnings_and_violations_are_counted(
    db: Database, live: LiveServer, whatsapp: WhatsApp, worker: Worker, clock: FrozenClock, people: People
) -> None:
    """The monitor, run as its periodic job at a frozen clock: the first-response warning at 80 %,
    then the breach; running the same tick again counts nothing more."""
    desk = Desk(db=db, live=live, whatsapp=whatsapp, worker=worker, clock=clock, people=people)
    desk.policy("normal", frt=600, resolution=3600)
    start = clock.now()
    desk.customer_writes("5215533334444")
    worker.drain()
    before = scrape(live)
    clock.set(start + timedelta(minutes=8, seconds=1))  # 80 % of 10 minutes
    desk.run_monitor()
    warned = scrape(live)
    clock.set(start + timedelta(minutes=10, seconds=1))
    desk.run_monitor()
    desk.run_monitor()
    breached = scrape(live)
    assert delta(before, warned, "max_sla_warnings_total", metric="frt") == 1
    assert delta(before, warned, "max_sla_violations_total", metric="frt") == 0
    assert delta(before, breached, "max_sla_warnings_total", metric="frt") == 1
    assert delta(before, breached, "max_sla_violations_total", metric="frt") == 1
    assert delta(before, breached, "max_sla_violations_total", metric="resolution") == 0


def test_connected_agents_follow_open_live_streams(live: LiveServer, people: People) -> None:
    _, token = people.user("agent")
    url = live.url.replace("http", "ws", 1) + "/api/v1/events"
    before = value(scrape(live), "max_connected_agents")
    with connect(url, additional_headers=bearer(token), open_timeout=10) as first:
        assert json.loads(first.recv(timeout=10))["control"] == "ready"
        with connect(url, additional_headers=bearer(token), open_timeout=10) as second:
            assert json.loads(second.recv(timeout=10))["control"] == "ready"
            assert value(scrape(live), "max_connected_agents") == before + 2
        eventually(lambda: value(scrape(live), "max_connected_agents") == before + 1, what="one closed")
    eventually(lambda: value(scrape(live), "max_connected_agents") == before, what="both closed")


def test_an_unreadable_database_says_so_instead_of_going_quiet(
    live: LiveServer, app: FastAPI, whatsapp: WhatsApp, db: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    whatsapp.text("hola", ts=clock.now().timestamp())
    healthy = scrape(live)
    assert value(healthy, "max_metrics_database_up") == 1
    assert ("max_events_lag", (("stage", "unsequenced"),)) in healthy
    # The same kind of database, out of reach: a closed port, or a file in a missing directory.
    unreachable = Database(
        f"postgresql://postgres@127.0.0.1:{free_port()}/max"
        if db.is_postgres
        else f"sqlite:///{tmp_path / 'missing' / 'max.db'}"
    )
    state = app.state  # what the live server serves
    state.db = unreachable
    try:
        down = scrape(live)  # still 200: the counters are there, and the database's state
    finally:
        state.db = db
        unreachable.dispose()
    assert value(down, "max_metrics_database_up") == 0
    assert not [key for key in down if key[0] in ("max_jobs", "max_events_lag")]
    assert value(down, "max_webhooks_received_total", channel="whatsapp", outcome="accepted") >= 1
    assert value(scrape(live), "max_metrics_database_up") == 1


def test_a_dead_workers_live_gauges_are_dropped(postgres_db: Database, tmp_path: Path) -> None:
    """``max server run --workers 2`` with ``PROMETHEUS_MULTIPROC_DIR``: a worker killed with
    SIGKILL is replaced, and its file of live gauges (connected agents) is removed, so the sum
    counts only workers that are alive; a clean stop removes them all."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{postgres_db.url}"\n[storage]\npath = "{tmp_path}/media"\n')
    home = tmp_path / "home"
    home.mkdir()
    server = ServerProcess(config, home, "--workers", "2", env={"PROMETHEUS_MULTIPROC_DIR": str(shared)})
    server.start()
    assert server.proc is not None
    supervisor = server.proc.pid

    def workers() -> set[int]:
        pids = {int(path.stem.rsplit("_", 1)[1]) for path in shared.glob("gauge_livesum_*.db")}
        return pids - {supervisor}

    try:
        first = eventually(lambda: workers() if len(workers()) == 2 else None, 30, what="two workers")
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        replaced = eventually(
            lambda: workers() if victim not in workers() and len(workers()) == 2 else None,
            30,
            what="the dead worker forgotten and replaced",
        )
        assert len(replaced - first) == 1
        response = httpx.get(server.url + "/metrics", timeout=10)
        assert response.status_code == 200 and "max_connected_agents 0.0" in response.text
    finally:
        code = server.terminate()
    assert code == 0, server.log()[-2000:]
    assert workers() == set(), sorted(shared.iterdir())
