"""The sequencer and the fan-out of sequenced events to websocket subscribers.

* :class:`Sequencer` numbers committed events (one at a time across the cluster: an advisory
  lock on PostgreSQL, the single writer on SQLite) whenever a transaction wrote events.
* :class:`Broadcaster` follows ``seq`` in every process (woken by LISTEN/NOTIFY across
  processes) and hands each event to the subscribers allowed to see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from max_server.access import Actor
from max_server.db import Database
from max_server.services import events
from max_server.wakeup import SIGNALS

log = logging.getLogger("max.realtime")
QUEUE_LIMIT = 10_000


def follow(
    name: str, step: Callable[[], object], stop: threading.Event, wake: threading.Event, poll: float
) -> None:
    """Runs ``step`` whenever woken (or every ``poll`` seconds) until ``stop``. No failure ends
    the loop, since a dead thread would stop sequencing or fan-out for good: it is logged
    (database errors by type only, as their text may carry row data; anything else with its
    traceback, through the redacting log handler) and ``step`` runs again after a growing pause."""
    backoff = 0.5
    while not stop.is_set():
        try:
            step()
        except SQLAlchemyError as exc:
            log.warning("%s: database error (%s); retrying in %.1fs", name, type(exc).__name__, backoff)
        except Exception:
            log.exception("%s: step failed; retrying in %.1fs", name, backoff)
        else:
            backoff = 0.5
            wake.wait(poll)
            wake.clear()
            continue
        stop.wait(backoff)
        backoff = min(backoff * 2, 10.0)


class Sequencer:
    def __init__(self, db: Database, poll_interval: float = 1.0) -> None:
        self.db = db
        self.poll = poll_interval
        self._wake = SIGNALS.subscribe("events")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="max-sequencer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        SIGNALS.unsubscribe("events", self._wake)

    def run_once(self) -> int:
        """Sequences everything pending; returns how many events got a seq."""
        total = 0
        while True:
            with self.db.session() as session:
                done = events.sequence_pending(session)
                session.commit()
            total += len(done)
            if not done:
                return total

    def _loop(self) -> None:
        follow("sequencer", self.run_once, self._stop, self._wake, self.poll)


@dataclass(eq=False)
class Subscriber:
    """One websocket connection's mailbox, filled from the broadcaster's thread."""

    actor: Actor
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[tuple[int, str] | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    overflowed: bool = False

    def put_many(self, items: list[tuple[int, str]]) -> None:
        """On the subscriber's event loop: the events of one broadcast batch, in order."""
        for item in items:
            if self.overflowed:
                return
            try:
                self.queue.put_nowait(item)
            except asyncio.QueueFull:
                # A client this far behind resumes from the database instead (it is told to).
                self.overflowed = True
                while not self.queue.empty():
                    self.queue.get_nowait()
                self.queue.put_nowait(None)


def _deliver(deliveries: list[tuple[Subscriber, list[tuple[int, str]]]]) -> None:
    for subscriber, items in deliveries:
        subscriber.put_many(items)


class Broadcaster:
    def __init__(self, db: Database, poll_interval: float = 1.0) -> None:
        self.db = db
        self.poll = poll_interval
        self.last_seq = 0
        self._subscribers: set[Subscriber] = set()
        self._lock = threading.Lock()
        self._wake = SIGNALS.subscribe("seq")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="max-broadcaster", daemon=True)

    def start(self) -> None:
        with self.db.session(write=False) as session:
            self.last_seq = events.latest_seq(session)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        SIGNALS.unsubscribe("seq", self._wake)

    def add(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.add(subscriber)

    def remove(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def publish_pending(self) -> int:
        sent = 0
        while True:
            with self.db.session(write=False) as session:
                batch = events.read_after(session, self.last_seq, limit=500)
            if not batch:
                return sent
            with self._lock:
                subscribers = list(self._subscribers)
            # Each subscriber's share of the batch, handed to each event loop in one call: a
            # wake-up of the loop per event and subscriber cost more than the sends themselves.
            shares: dict[Subscriber, list[tuple[int, str]]] = {}
            for event in batch:
                text = json.dumps(events.envelope(event), ensure_ascii=False)
                assert event.seq is not None
                for subscriber in subscribers:
                    if events.may_receive(subscriber.actor, event.audience):
                        shares.setdefault(subscriber, []).append((event.seq, text))
                self.last_seq = event.seq
                sent += 1
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Subscriber, list[tuple[int, str]]]]] = {}
            for subscriber, items in shares.items():
                by_loop.setdefault(subscriber.loop, []).append((subscriber, items))
            for loop, deliveries in by_loop.items():
                with contextlib.suppress(RuntimeError):  # the loop has closed: its sockets with it
                    loop.call_soon_threadsafe(_deliver, deliveries)

    def _loop(self) -> None:
        follow("broadcaster", self.publish_pending, self._stop, self._wake, self.poll)


def control(kind: str, **fields: Any) -> str:
    """A control frame on the stream: ``{"control": "ready"|"resync", …}`` (never an event)."""
    return json.dumps({"control": kind, **fields})
