"""Everything a server process runs besides HTTP: the LISTEN connection (PostgreSQL), the
sequencer and broadcaster (always), and the job worker and scheduler (unless disabled)."""

from __future__ import annotations

import logging

from max_server import httpclients
from max_server.db import Database
from max_server.jobs import registry
from max_server.jobs.scheduler import Scheduler
from max_server.jobs.worker import Worker
from max_server.realtime import Broadcaster, Sequencer
from max_server.settings import Settings
from max_server.wakeup import PostgresListener

log = logging.getLogger("max.runtime")


class Runtime:
    def __init__(self, db: Database, settings: Settings, *, jobs: bool = True) -> None:
        registry.load_builtin_handlers()
        self.db = db
        self.settings = settings
        self.listener = PostgresListener(db.url) if db.is_postgres else None
        self.sequencer = Sequencer(db)
        self.broadcaster = Broadcaster(db)
        run_jobs = jobs and settings.jobs.enabled
        self.worker = Worker(db, settings) if run_jobs else None
        self.scheduler = Scheduler(db) if run_jobs else None

    def start(self) -> None:
        if self.listener:
            self.listener.start()
        self.sequencer.start()
        self.broadcaster.start()
        if self.worker:
            self.worker.start()
        if self.scheduler:
            self.scheduler.start()
        log.info("background work started (jobs: %s)", "on" if self.worker else "off")

    def stop(self) -> None:
        if self.scheduler:
            self.scheduler.stop()
        if self.worker:
            self.worker.stop()
        self.broadcaster.stop()
        self.sequencer.stop()
        if self.listener:
            self.listener.stop()
        httpclients.close_all()
