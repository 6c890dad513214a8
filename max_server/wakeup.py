"""Wake-ups without polling delay.

A transaction that enqueues a job or writes an event asks for a wake-up on a channel
(``jobs``, ``events``, ``seq``). After it commits, sleepers in this process wake at once; on
PostgreSQL the same transaction issues ``pg_notify``, which PostgreSQL delivers at commit to every
process listening (see :class:`PostgresListener`). Sleepers still poll slowly as a safety net.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict

from sqlalchemy import event, text
from sqlmodel import Session

log = logging.getLogger("max.wakeup")
CHANNELS = ("jobs", "events", "seq")
_PG_PREFIX = "max_"
_INFO_KEY = "max_wake"


class Signals:
    """Process-wide named wake-ups; each subscriber gets its own flag."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, list[threading.Event]] = defaultdict(list)

    def subscribe(self, channel: str) -> threading.Event:
        flag = threading.Event()
        with self._lock:
            self._subscribers[channel].append(flag)
        return flag

    def unsubscribe(self, channel: str, flag: threading.Event) -> None:
        with self._lock:
            if flag in self._subscribers[channel]:
                self._subscribers[channel].remove(flag)

    def notify(self, channel: str) -> None:
        with self._lock:
            flags = list(self._subscribers[channel])
        for flag in flags:
            flag.set()


SIGNALS = Signals()


def request(session: Session, channel: str) -> None:
    """Asks for a wake-up on ``channel`` when this session's transaction commits."""
    pending: set[str] = session.info.setdefault(_INFO_KEY, set())
    if channel in pending:
        return
    pending.add(channel)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": _PG_PREFIX + channel})


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    for channel in session.info.pop(_INFO_KEY, ()):
        SIGNALS.notify(channel)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_INFO_KEY, None)


class PostgresListener:
    """One connection per process that LISTENs and turns notifications into local wake-ups."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="max-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import psycopg

        conninfo = self.url.replace("postgresql+psycopg://", "postgresql://", 1)
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
                    for channel in CHANNELS:
                        conn.execute(f"LISTEN {_PG_PREFIX}{channel}")
                    backoff = 0.5
                    # Something may have happened while we were not listening.
                    for channel in CHANNELS:
                        SIGNALS.notify(channel)
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0, stop_after=100):
                            SIGNALS.notify(note.channel.removeprefix(_PG_PREFIX))
            except Exception as exc:  # the database went away: retry, quietly bounded
                if self._stop.is_set():
                    return
                log.warning("LISTEN connection lost (%s); retrying in %.1fs", type(exc).__name__, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
