"""Outbound webhooks: verified deliveries per second, end to end.

10,000 events (``--quick``: 2,000) are written the way services write them (``events.emit`` in
transactions of 500), then timed from the commit of the last batch until a receiver has
verified every delivery: the sequencer numbers them and creates one delivery each, the job
worker POSTs the signed bytes through the address guard and records each attempt. The receiver
runs in a child process (it does not share MAX's interpreter) and checks every request as a real one
would: ``standardwebhooks`` ``Webhook.verify`` (signature and timestamp) and X-MAX-Signature over
the received bytes; it counts distinct ``webhook-id`` values so a duplicate cannot inflate the
figure.

Each backend gets a fresh, migrated database (``common.fresh_database``): SQLite in a temporary
directory; PostgreSQL a scratch database created beside ``MAX_BENCH_DATABASE_URL`` (default
postgresql://postgres@127.0.0.1:5432/postgres) and dropped afterwards. Besides the rate, the
figures give the CPU time of the MAX process per delivery (sequencer and worker; the receiver is
another process) and the SQL statements it ran per delivery: both hold still on a noisy machine.

Run: ``python bench/webhooks_out.py [--quick] [--json] [--backend sqlite|postgres|both]
[--concurrency N] [--processes N]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from common import Figure, fresh_database, report

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET_PER_SECOND = 500.0
BATCH = 500

RECEIVER_CHILD = """
import hashlib, hmac, json, sys, threading, time
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from max_server.serve import ThreadedServer

secret = sys.stdin.readline().strip()
hook = Webhook(secret)
lock = threading.Lock()
ids, bad = set(), []

async def receive(request):
    body = await request.body()
    try:
        hook.verify(body, dict(request.headers))
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("x-max-signature", "")):
            raise WebhookVerificationError("X-MAX-Signature mismatch")
    except WebhookVerificationError as exc:
        with lock:
            bad.append(str(exc))
        return Response(b"bad signature", status_code=400)
    with lock:
        ids.add(request.headers["webhook-id"])
    return Response(b"ok")

async def stats(request):
    with lock:
        return JSONResponse(
            {"verified": len(ids), "bad": len(bad), "reasons": bad[:3], "cpu": time.process_time()}
        )

async def reset(request):
    with lock:
        ids.clear(); bad.clear()
    return JSONResponse({})

server = ThreadedServer(Starlette(routes=[
    Route("/hook", receive, methods=["POST"]),
    Route("/stats", stats), Route("/reset", reset, methods=["POST"]),
])).start()
print(server.url, flush=True)
sys.stdin.read()
server.stop()
"""


WORKER_CHILD = """
import sys
from max_server.jobs import registry
from max_server.jobs.worker import Worker
from max_server.db import Database
from max_server.settings import load_settings
url, concurrency, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
registry.load_builtin_handlers()
settings = load_settings(None, server={"environment": "test", "secret_key": "bench-secret-key-0123456789"},
                         database={"url": url}, webhooks={"allow_private_networks": True})
db = Database(settings.database_url, pool_size=concurrency + 4)
worker = Worker(db, settings, concurrency=concurrency, poll_interval=0.05, name=name)
worker.start()
print("ready", flush=True)
sys.stdin.read()
worker.stop()
db.dispose()
"""


@contextmanager
def worker_processes(url: str, count: int, concurrency: int, label: str) -> Iterator[None]:
    """``count`` more worker processes on the same database (how MAX scales on PostgreSQL)."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER_CHILD, url, str(concurrency), f"bench-{label}-{n}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(Path(__file__).resolve().parent.parent),
        )
        for n in range(count)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("a worker process did not start")
        yield
    finally:
        for child in children:
            if child.stdin is not None:
                child.stdin.close()
        for child in children:
            child.wait(timeout=30)


@contextmanager
def receiver(secret: str) -> Iterator[str]:
    """The verifying receiver in a child process; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-c", RECEIVER_CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(Path(__file__).resolve().parent.parent),
    )
    try:
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(secret + "\n")
        process.stdin.flush()
        url = process.stdout.readline().strip()
        if not url:
            raise RuntimeError("the receiver did not start")
        yield url
    finally:
        if process.stdin is not None:
            process.stdin.close()
        process.wait(timeout=15)


def prepare(url: str) -> tuple[Any, Any]:
    """Settings and a Database on ``url`` (already migrated by ``fresh_database``)."""
    from max_server.db import Database
    from max_server.settings import load_settings

    settings = load_settings(
        None,
        server={"environment": "test", "secret_key": "bench-secret-key-0123456789"},
        database={"url": url},
        webhooks={"allow_private_networks": True},  # the receiver is on loopback
    )
    return settings, Database(settings.database_url, pool_size=30)


class StatementCounter:
    """Counts the statements the engine sends (an executemany counts once), from any thread."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.count = 0
        self._lock = threading.Lock()
        event.listen(engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, *_: Any) -> None:
        with self._lock:
            self.count += 1


def run_backend(
    label: str, url: str, events_count: int, concurrency: int, processes: int = 1
) -> list[Figure]:
    import httpx

    from max_server import httpclients
    from max_server.access import Actor
    from max_server.jobs import registry
    from max_server.jobs.worker import Worker
    from max_server.realtime import Sequencer
    from max_server.schemas import WebhookSubscriptionCreate
    from max_server.services import events, webhooks

    registry.load_builtin_handlers()
    settings, db = prepare(url)
    with db.session() as session:  # the secret is only known once the subscription exists
        created = webhooks.create(
            session,
            Actor.system("bench"),
            settings,
            WebhookSubscriptionCreate(url="http://127.0.0.1:9/placeholder", events=["*"]),
        )
    with receiver(created.secret) as base:
        with db.session() as session:
            webhooks.update(
                session,
                Actor.system("bench"),
                settings,
                int(created.subscription.id),
                webhooks.WebhookSubscriptionUpdate(url=base + "/hook"),
            )
        data = {"id": "1", "number": 1, "status": "closed", "customer": {"id": "1", "name": "Juan López"}}
        for start in range(0, events_count, BATCH):
            with db.session() as session:
                for n in range(start, min(start + BATCH, events_count)):
                    events.emit(session, "conversation.closed", {**data, "number": n}, to=events.audience())
                session.commit()
        stack = ExitStack()
        stack.enter_context(worker_processes(url, processes - 1, concurrency, label))
        statements = StatementCounter(db.engine)
        with httpx.Client(timeout=10) as http:
            receiver_cpu = http.get(base + "/stats").json()["cpu"]
        cpu_started = time.process_time()
        started = time.perf_counter()
        sequencer = Sequencer(db, poll_interval=0.05)
        worker = Worker(db, settings, concurrency=concurrency, poll_interval=0.05, name=f"bench-{label}")
        sequencer.start()
        worker.start()
        stats: dict[str, Any] = {"verified": 0, "bad": 0}
        try:
            with httpx.Client(timeout=10) as http:
                deadline = started + 600
                while time.perf_counter() < deadline:
                    stats = http.get(base + "/stats").json()
                    if stats["verified"] + stats["bad"] >= events_count:
                        break
                    time.sleep(0.05)
        finally:
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started  # every thread of this process: sequencer, worker
            statement_count = statements.count
            receiver_cpu = stats.get("cpu", receiver_cpu) - receiver_cpu
            worker.stop()
            sequencer.stop()
            stack.close()
            httpclients.close_all()
            db.dispose()
    verified = int(stats["verified"])
    rate = verified / elapsed if elapsed else 0.0
    per = max(verified, 1)
    own = "" if processes == 1 else " (this process of several)"
    return [
        Figure(
            f"webhooks {label}: verified deliveries/s ({events_count} events, {processes} proc)",
            f">= {TARGET_PER_SECOND:.0f}",
            rate,
            "/s",
            rate >= TARGET_PER_SECOND and verified == events_count,
        ),
        Figure(
            f"webhooks {label}: deliveries verified by the receiver (bad: {stats['bad']})",
            f"= {events_count}",
            verified,
            "events",
            verified == events_count and stats["bad"] == 0,
        ),
        Figure(f"webhooks {label}: MAX CPU per delivery{own}", "(reported)", cpu * 1000 / per, "ms", True),
        Figure(
            f"webhooks {label}: receiver CPU per delivery (verifying)",
            "(reported)",
            receiver_cpu * 1000 / per,
            "ms",
            True,
        ),
        Figure(
            f"webhooks {label}: SQL statements per delivery{own}",
            "(reported)",
            statement_count / per,
            "stmts",
            True,
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 events instead of 10,000")
    parser.add_argument("--json", action="store_true", help="print a JSON list of figures")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--concurrency", type=int, default=16, help="worker threads per process (16)")
    parser.add_argument(
        "--processes", type=int, default=1, help="worker processes on PostgreSQL (SQLite: always 1)"
    )
    args = parser.parse_args()
    count = 2000 if args.quick else 10_000
    figures: list[Figure] = []
    if args.backend in ("sqlite", "both"):
        with fresh_database("sqlite") as url:
            figures += run_backend("sqlite", url, count, args.concurrency)
    if args.backend in ("postgres", "both"):
        with fresh_database("postgres") as url:
            figures += run_backend("postgresql", url, count, args.concurrency, max(args.processes, 1))
    report(figures, args.json)
    return 0 if all(f.passed for f in figures) else 1


if __name__ == "__main__":
    raise SystemExit(main())
