"""A MAX background node for multi-process tests: the same worker and scheduler that
``max server run`` starts, with the test job kinds registered.

    python -m tests.support.node DATABASE_URL [--lease S] [--tick S] [--slow-every N] [--name NAME]
                                 [--poll S]
"""

from __future__ import annotations

import argparse
import signal
import threading

from max_server.db import Database
from max_server.jobs.scheduler import Scheduler
from max_server.jobs.worker import Worker, worker_name
from max_server.settings import load_settings
from max_server.wakeup import PostgresListener
from tests.support import job_kinds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--tick", type=int, default=0)
    parser.add_argument("--slow-every", type=int, default=0)
    parser.add_argument("--name", default="")
    parser.add_argument("--poll", type=float, default=0.2, help="the worker's safety-net poll (seconds)")
    args = parser.parse_args()
    settings = load_settings(
        None,
        database={"url": args.url},
        jobs={"lease": int(max(args.lease, 1)), "poll_interval": args.poll},
    )
    db = Database(args.url)
    listener = PostgresListener(db.url) if db.is_postgres else None
    if listener:
        listener.start()
    worker = Worker(
        db, settings, concurrency=2, lease_seconds=args.lease, name=f"{args.name or 'node'}:{worker_name()}"
    )
    worker.start()
    scheduler = None
    if args.tick:
        job_kinds.register_tick(args.tick, args.slow_every or None)
        from max_server.jobs import registry

        scheduler = Scheduler(db, [t for t in registry.periodic_tasks() if t.name == "test.tick"])
        scheduler.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    if scheduler:
        scheduler.stop()
    worker.stop()


if __name__ == "__main__":
    main()
