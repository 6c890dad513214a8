from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlmodel import Session

from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs.worker import Worker
from max_server.settings import Settings
from tests.support import job_kinds  # noqa: F401  (registers the test job kinds)


@pytest.fixture
def make_worker(db: Database, settings: Settings, clock: FrozenClock) -> Callable[..., Worker]:
    """Workers that read time from the test clock, so leases and backoff move when it moves."""

    def make(name: str = "w1", lease: float = 30) -> Worker:
        def now(_: Session) -> object:
            return clock.now()

        return Worker(db, settings, concurrency=1, now=now, name=name, lease_seconds=lease)  # type: ignore[arg-type]

    return make
