"""The outbox and the sequencer: gap-free seq, late commits never skipped by a resuming reader."""

from __future__ import annotations

import random
import threading

from sqlmodel import select

from max_server.db import Database
from max_server.models import Event
from max_server.realtime import Sequencer
from max_server.services import events


def emit(db: Database, name: str, team: int | None = None) -> None:
    with db.session() as session:
        events.emit(session, "test.event", {"name": name}, to=events.audience(teams=[team]))
        session.commit()


def test_transactions_committing_out_of_id_order_reach_a_resuming_reader(postgres_db: Database) -> None:
    db = postgres_db
    sequencer = Sequencer(db)
    late = db.session()
    events.emit(late, "test.event", {"name": "late"}, to=events.audience(everyone=True))
    late.flush()  # takes the lower id, but commits last
    emit(db, "early")
    sequencer.run_once()
    with db.session(write=False) as session:
        first = events.read_after(session, 0)
    assert [(e.data["name"], e.seq) for e in first] == [("early", 1)]
    late.commit()
    late.close()
    sequencer.run_once()
    with db.session(write=False) as session:
        second = events.read_after(session, first[-1].seq or 0)
    assert [(e.data["name"], e.seq) for e in second] == [("late", 2)]
    assert second[0].id is not None and first[0].id is not None and second[0].id < first[0].id


def test_concurrent_writers_and_a_resuming_reader_see_every_event_once_in_order(db: Database) -> None:
    writers, per_writer = 4, 25
    sequencer = Sequencer(db)
    done = threading.Event()
    seen: list[int] = []
    names: list[str] = []

    def write(n: int) -> None:
        for i in range(per_writer):
            emit(db, f"{n}-{i}")
            if random.random() < 0.3:
                sequencer.run_once()

    def read() -> None:
        last = 0
        while True:
            finished = done.is_set()
            with db.session(write=False) as session:
                batch = events.read_after(session, last, limit=7)
            for event in batch:
                seen.append(event.seq or 0)
                names.append(event.data["name"])
                last = event.seq or last
            if finished and not batch:
                return

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    reader = threading.Thread(target=read)
    reader.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sequencer.run_once()
    done.set()
    reader.join(30)
    total = writers * per_writer
    assert seen == list(range(1, total + 1))
    assert sorted(names) == sorted(f"{n}-{i}" for n in range(writers) for i in range(per_writer))


def test_sequenced_hooks_run_once_per_event(db: Database) -> None:
    calls: list[str] = []

    def hook(session: object, batch: list[Event]) -> None:
        calls.extend(e.data["name"] for e in batch)

    events.on_sequenced(hook)
    try:
        emit(db, "a")
        emit(db, "b")
        sequencer = Sequencer(db)
        sequencer.run_once()
        sequencer.run_once()
    finally:
        events._hooks.remove(hook)
    assert calls == ["a", "b"]


def test_pruning_keeps_the_newest_event_so_seq_never_restarts(db: Database, clock: object) -> None:
    from datetime import timedelta

    for name in "abc":
        emit(db, name)
    Sequencer(db).run_once()
    with db.session() as session:
        later = max(e.created_at for e in session.exec(select(Event))) + timedelta(days=1)
        assert events.prune(session, later) == 2
        session.commit()
        assert events.latest_seq(session) == 3
        assert events.needs_resync(session, 0) is True  # seq 1 and 2 are gone
        assert events.needs_resync(session, 2) is False
        assert events.needs_resync(session, 99) is True  # from another database
    emit(db, "d")
    Sequencer(db).run_once()
    with db.session(write=False) as session:
        assert [e.seq for e in events.read_after(session, 0)] == [3, 4]
