"""The SLA monitor with 10k and 100k open conversations on PostgreSQL: a sweep when nothing is
due (target ≤ 50 ms), and when 1,000 fall due and breach (target ≤ 1 s), flat in the number of
conversations that are not due.

Each measured sweep is what the periodic ``sla.monitor`` job does: batches of the due rows (one
partial index), warnings, breaches and their events, committed. Median of several runs.

Run: ``python bench/sla_sweep.py [--quick] [--json]`` (PostgreSQL from ``MAX_BENCH_DATABASE_URL``).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

from common import Figure, fresh_database, median, report

EMPTY_TARGET_MS, DUE_TARGET_MS, DUE = 50.0, 1000.0, 1000


def populate(url: str, total: int, now: datetime) -> None:
    """``total`` open conversations of one team with an SLA, none due before ``now + 1 h``."""
    from sqlalchemy import text

    from max_server.access import Actor
    from max_server.db import Database
    from max_server.models import SlaPolicy
    from max_server.schemas import TeamCreate
    from max_server.services import teams

    db = Database(url, pool_size=2)
    with db.session() as session:
        team = teams.create_team(session, Actor.system("bench"), TeamCreate(slug="support"))
        session.add(
            SlaPolicy(team_id=team.id, priority="normal", frt_target_s=600, resolution_target_s=86400)
        )  # type: ignore[arg-type]
        session.commit()
    later = now + timedelta(hours=1)
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO channel_accounts (kind, external_id, name, is_active, created_at) "
                "VALUES ('whatsapp', '1', 'bench', true, :now)"
            ),
            {"now": now},
        )
        connection.execute(
            text(
                "INSERT INTO customers (name, is_active, created_at) "
                "SELECT 'c' || n, true, :now FROM generate_series(1, :total) AS n"
            ),
            {"now": now, "total": total},
        )
        connection.execute(
            text(
                "INSERT INTO conversations (number, customer_id, channel_account_id, team_id, status, priority, "
                "required_skills, first_message_at, cycle, cycle_started_at, after_hours, rate_limited, created_at, "
                "updated_at, queued_at, frt_due_at, resolution_due_at, sla_next_check_at) "
                "SELECT n, n, 1, :team, 'queued', 'normal', '[]', :start, 1, :start, false, false, :start, :start, "
                ":start, :later, :later, :later FROM generate_series(1, :total) AS n"
            ),
            {"team": team.id, "start": now - timedelta(minutes=5), "later": later, "total": total},
        )
        connection.execute(text("ANALYZE conversations"))
    db.dispose()


def make_due(url: str, count: int, now: datetime, offset: int) -> None:
    """``count`` conversations whose first response is now overdue (started 20 minutes ago)."""
    from sqlalchemy import text

    from max_server.db import Database

    db = Database(url, pool_size=1)
    start = now - timedelta(minutes=20)
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE conversations SET cycle_started_at = :start, first_message_at = :start, "
                "frt_due_at = :due, sla_next_check_at = :due, frt_warned_at = :start WHERE id > :lo AND id <= :hi"
            ),
            {"start": start, "due": start + timedelta(minutes=10), "lo": offset, "hi": offset + count},
        )
    db.dispose()


def sweep(url: str, now: datetime) -> float:
    from max_server.db import Database
    from max_server.services import sla, sla_monitor

    db = Database(url, pool_size=2)
    started = time.perf_counter()
    while True:
        with db.session() as session:
            seen = sla_monitor.sweep_batch(session, now)
            session.commit()
        if seen < sla.BATCH:
            break
    elapsed = (time.perf_counter() - started) * 1000
    db.dispose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = [10_000] if args.quick else [10_000, 100_000]
    runs = 3 if args.quick else 5
    figures = []
    now = datetime.now(UTC)
    for total in sizes:
        with fresh_database() as url:
            populate(url, total, now)
            sweep(url, now)  # warm-up
            empty = median([sweep(url, now) for _ in range(runs)])
            figures.append(
                Figure(
                    f"sla sweep, nothing due, {total:,} open conversations",
                    f"<= {EMPTY_TARGET_MS:.0f} ms",
                    empty,
                    "ms",
                    empty <= EMPTY_TARGET_MS,
                )
            )
            due_times = []
            for run in range(runs):
                make_due(url, DUE, now, offset=run * DUE)
                due_times.append(sweep(url, now))
            measured = median(due_times)
            figures.append(
                Figure(
                    f"sla sweep, {DUE:,} due (breach), {total:,} open conversations",
                    f"<= {DUE_TARGET_MS:.0f} ms",
                    measured,
                    "ms",
                    measured <= DUE_TARGET_MS,
                )
            )
    report(figures, args.json)


if __name__ == "__main__":
    main()
