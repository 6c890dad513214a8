"""Wake-ups without polling delay.

A transaction that enqueues a job, writes an event or changes a channel account asks for a
wake-up on a channel (``jobs``, ``events``, ``seq``, ``accounts``). After it commits, sleepers in
this process wake at once; on PostgreSQL the same transaction issues one ``pg_notify`` per channel
just before COMMIT, which PostgreSQL delivers at commit to every process listening (see
:class:`PostgresListener`). Sleepers still poll slowly as a safety net.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict

from sqlalchemy import TextClause, event, text
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session

log = logging.getLogger("max.wakeup")
CHANNELS = ("jobs", "events", "seq", "accounts")
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
    session.info.setdefault(_INFO_KEY, set()).add(channel)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    # One statement per transaction, whatever it asked for and however often, sent as the last
    # thing before COMMIT (a notification sent earlier would split the flush of the rows around
    # it into several INSERTs). PostgreSQL delivers it at commit, to every listening process.
    if session.in_nested_transaction():
        return  # a savepoint: the transaction goes on
    session.flush()  # what the flush writes may ask for wake-ups too (a changed channel account)
    pending = session.info.get(_INFO_KEY)
    if pending and session.get_bind().dialect.name == "postgresql":
        channels = sorted(pending)
        session.execute(
            _notify_statement(len(channels)), {f"c{n}": _PG_PREFIX + c for n, c in enumerate(channels)}
        )


def _notify_statement(count: int) -> TextClause:
    found = _NOTIFY.get(count)
    if found is None:
        found = _NOTIFY[count] = text("SELECT " + ", ".join(f"pg_notify(:c{n}, '')" for n in range(count)))
    return found


_NOTIFY: dict[int, TextClause] = {}


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released: nothing is visible to others yet
    for channel in session.info.pop(_INFO_KEY, ()):
        SIGNALS.notify(channel)


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    # The transaction is over (rolled back, or committed and announced above). A savepoint
    # rolled back keeps what was asked before it: a spare wake-up costs a look, a missing one
    # a poll interval.
    if transaction.parent is None:
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
