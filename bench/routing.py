"""One assignment with 500 online agents in a team, with and without skills (target ≤ 5 ms).

Each measured step queues one conversation and runs the team's assignment pass in its own
transaction (lock, candidates with load, skills and idleness, the queue, the choice, the
decision record, the event), the way the ``routing.assign`` job does. Median of several runs.

Run: ``python bench/routing.py [--quick] [--json] [--agents N]`` (PostgreSQL from
``MAX_BENCH_DATABASE_URL``, default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime

from common import Figure, fresh_database, median, online_team, percentile, report

TARGET_MS = 5.0


def setup(url: str, agents: int) -> tuple[object, int]:
    from sqlalchemy import text

    from max_server.db import Database
    from max_server.models import AgentSkill, ChannelAccount, Customer

    db = Database(url, pool_size=5)
    rng = random.Random(7)
    with db.session() as session:
        team, users = online_team(session, agents)
        for user in users:
            for skill in rng.sample(["english", "spanish", "billing", "tech", "vip"], 3):
                session.add(AgentSkill(user_id=user.id, skill=skill, proficiency=rng.randint(1, 5)))
        session.add(ChannelAccount(kind="whatsapp", external_id="1", name="bench"))
        session.add(Customer(name="bench"))
        session.commit()
        assert team.id is not None
    with db.engine.connect() as connection:
        connection.execute(text("ANALYZE"))  # what autovacuum does on a live database
        connection.commit()
    return db, team.id


def one_assignment(
    db: object, team_id: int, number: int, skills: list[dict[str, object]]
) -> tuple[float, int]:
    """Queues one conversation, times the assignment pass (and counts its statements, COMMIT
    aside), then closes it again."""
    from sqlalchemy import event

    from max_server.models import Conversation
    from max_server.services import routing

    now = datetime.now(UTC)
    with db.session() as session:  # type: ignore[attr-defined]
        conversation = Conversation(
            number=number,
            customer_id=1,
            channel_account_id=1,
            team_id=team_id,
            status="queued",
            queued_at=now,
            required_skills=skills,
        )
        session.add(conversation)
        session.commit()
        conversation_id = conversation.id
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    engine = db.engine  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", count)
    started = time.perf_counter()
    with db.session() as session:  # type: ignore[attr-defined]
        session.info["max_routing"] = True
        assigned = routing.assign_queue(session, team_id, now, relax_after=120)
        session.commit()
    elapsed = (time.perf_counter() - started) * 1000
    event.remove(engine, "before_cursor_execute", count)
    if assigned != 1:
        raise SystemExit("the conversation was not assigned: the bench is wrong")
    with db.session() as session:  # type: ignore[attr-defined]
        row = session.get(Conversation, conversation_id)
        row.status = "closed"
        session.add(row)
        session.commit()
    return elapsed, len(statements)


def round_trip_floor(db: object, runs: int) -> tuple[float, float]:
    """The machine's floor for a pass: the median of one trivial statement's round trip, and of
    a one-row write transaction (INSERT + COMMIT, the WAL flush included), on the same pool."""
    from sqlalchemy import text

    engine = db.engine  # type: ignore[attr-defined]
    trips, commits = [], []
    with engine.connect() as connection:
        connection.execute(text("CREATE TEMPORARY TABLE floor_probe (n integer)"))
        connection.commit()
        for n in range(runs + 3):
            started = time.perf_counter()
            connection.execute(text("SELECT 1"))
            trips.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            connection.execute(text("INSERT INTO floor_probe VALUES (:n)"), {"n": n})
            connection.commit()
            commits.append((time.perf_counter() - started) * 1000)
    return median(trips[3:]), median(commits[3:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--agents", type=int, default=500)
    args = parser.parse_args()
    runs = 15 if args.quick else 60
    figures = []
    with fresh_database() as url:
        db, team_id = setup(url, args.agents)
        number = 0
        for label, skills in (
            ("without skills", []),
            ("with 2 skills", [{"skill": "english", "min": 2}, {"skill": "billing", "min": 1}]),
        ):
            times, statements = [], 0
            for _ in range(runs + 3):
                number += 1
                elapsed, statements = one_assignment(db, team_id, number, skills)
                times.append(elapsed)
            times = times[3:]  # warm-up
            measured = median(times)
            figures.append(
                Figure(
                    f"routing: one assignment, {args.agents} online agents, {label} (median)",
                    f"<= {TARGET_MS} ms",
                    measured,
                    "ms",
                    measured <= TARGET_MS,
                )
            )
            figures.append(Figure("routing: same, p95", "(reported)", percentile(times, 95), "ms", True))
            figures.append(Figure("routing: same, statements", "(reported)", statements, "", True))
        # Where the limit is: a pass is a dozen statements, each a round trip to PostgreSQL, and a
        # COMMIT; on a small shared machine those alone can take most of the budget.
        trip, commit = round_trip_floor(db, runs * 4)
        figures.append(
            Figure(
                f"routing: floor, {statements} round trips + one commit on this machine",
                "(reported)",
                statements * trip + commit,
                f"ms ({trip:.2f} ms/trip, {commit:.2f} ms/commit)",
                True,
            )
        )
        db.dispose()  # type: ignore[attr-defined]
    report(figures, args.json)


if __name__ == "__main__":
    main()
