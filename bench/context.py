"""Benchmark: ``GET /api/v1/customers/{id}/context`` for a customer with a long history.

    python bench/context.py [--quick] [--json] [--database-url postgresql://postgres@127.0.0.1:5432/x]

Creates a scratch PostgreSQL database (``max_bench_context`` on the server of the URL given, or of
``MAX_BENCH_DATABASE_URL`` / ``MAX_TEST_DATABASE_URL``), migrates it, and seeds one customer with
5,000 conversations and 1,000 transactions (``--quick``: 1,000 and 200) among 20,000 other
conversations, then measures the endpoint server-side (timed around the ASGI app: auth, the
queries, JSON; not the client or the network), the service alone, and the round trips.
Target: p95 ≤ 20 ms server-side. Prints a table, or with ``--json`` a list of
``{"figure", "target", "measured", "unit", "pass"}``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, insert, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import Figure, percentile, report  # noqa: E402

from max_server import migrate  # noqa: E402
from max_server.access import Actor  # noqa: E402
from max_server.db import Database, normalise_url  # noqa: E402
from max_server.models import (  # noqa: E402
    ChannelAccount,
    Conversation,
    Customer,
    CustomerIdentity,
    CustomerTag,
    Ticket,
    Transaction,
)
from max_server.schemas import UserCreate  # noqa: E402
from max_server.services import context, users  # noqa: E402

TARGET_MS = 20.0
BENCH_DB = "max_bench_context"


def scratch_database(base_url: str) -> str:
    url = normalise_url(base_url)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{BENCH_DB}"'))
    admin.dispose()
    return make_url(url).set(database=BENCH_DB).render_as_string(hide_password=False)


def seed(db: Database, conversations: int, transactions: int, others: int) -> tuple[int, str]:
    """One customer with a long history among many others; returns (customer id, admin token)."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with db.session() as session:
        _, token = users.create_user(
            session,
            Actor.system("bench"),
            UserCreate(name="Bench Admin", email="bench@example.com", role="admin"),
        )
        accounts = [
            ChannelAccount(kind=k, external_id=f"bench-{k}", name=k) for k in ("whatsapp", "chat_app")
        ]
        session.add_all(accounts)
        customer = Customer(name="Juan López", email="juan@example.com", phone_e164="+5215512345678")
        session.add(customer)
        session.flush()
        crowd = [Customer(name=f"Customer {n}") for n in range(others // 10)]
        session.add_all(crowd)
        session.flush()
        assert customer.id is not None
        session.add_all(
            [
                CustomerIdentity(customer_id=customer.id, channel="whatsapp", external_id="5215512345678"),
                CustomerIdentity(customer_id=customer.id, channel="chat_app", external_id="customer_abc123"),
                CustomerTag(customer_id=customer.id, tag="VIP"),
                CustomerTag(customer_id=customer.id, tag="Prefers English"),
            ]
        )
        rows: list[dict[str, Any]] = []
        owners = [(customer.id, conversations)] + [(c.id, 10) for c in crowd]
        number = 0
        for owner, count in owners:
            for n in range(count):
                number += 1
                at = start + timedelta(minutes=number)
                rows.append(
                    {
                        "number": number,
                        "customer_id": owner,
                        "channel_account_id": accounts[n % 2].id,
                        "status": "closed",
                        "priority": "normal",
                        "subject": f"Question {n}",
                        "required_skills": [],
                        "close_reason": "resolved",
                        "closed_at": at,
                        "cycle": 1,
                        "after_hours": False,
                        "rate_limited": False,
                        "created_at": at,
                        "updated_at": at,
                    }
                )
        for chunk in range(0, len(rows), 5000):
            session.execute(insert(Conversation), rows[chunk : chunk + 5000])
        session.execute(
            insert(Transaction),
            [
                {
                    "customer_id": customer.id,
                    "external_id": f"TXN-{n}",
                    "amount_minor": 1000 + n,
                    "currency": "USD",
                    "status": "completed",
                    "occurred_at": start + timedelta(hours=n),
                    "created_at": start,
                    "updated_at": start,
                }
                for n in range(transactions)
            ],
        )
        session.execute(
            insert(Ticket),
            [
                {
                    "customer_id": customer.id,
                    "external_id": f"TICKET-{n}",
                    "subject": f"Issue {n}",
                    "status": "open" if n % 5 == 0 else "closed",
                    "created_at": start,
                    "updated_at": start + timedelta(hours=n),
                }
                for n in range(50)
            ],
        )
        session.commit()
        customer_id = customer.id
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))  # what autovacuum does on a live database
    return customer_id, token


def measure(db: Database, customer_id: int, token: str, requests: int) -> list[Figure]:
    from fastapi.testclient import TestClient

    from max_server.app import create_app
    from max_server.settings import load_settings

    settings = load_settings(
        None,
        server={"environment": "test", "secret_key": "bench-secret-key-0123456789"},
        database={"url": db.url},
        storage={"path": tempfile.mkdtemp(prefix="max-bench-")},
    )
    app = create_app(settings, db=db, background=False)
    server_side: list[float] = []

    async def timed(scope: Any, receive: Any, send: Any) -> None:
        """Server-side time: from the request entering the app to its last byte leaving it."""
        began = time.perf_counter()
        await app(scope, receive, send)
        if scope["type"] == "http":
            server_side.append((time.perf_counter() - began) * 1000)

    path = f"/api/v1/customers/{customer_id}/context"
    headers = {"Authorization": f"Bearer {token}"}
    http: list[float] = []
    with TestClient(timed) as client:
        for _ in range(20):
            assert client.get(path, headers=headers).status_code == 200
        server_side.clear()
        for _ in range(requests):
            began = time.perf_counter()
            response = client.get(path, headers=headers)
            http.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, response.text
        document = response.json()
    assert document["previous_conversations_total"] > 0
    service: list[float] = []
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    admin = Actor.system("bench")
    for n in range(requests):
        with db.session(write=False) as session:
            if n == 0:
                event.listen(db.engine, "before_cursor_execute", count)
            began = time.perf_counter()
            context.build(session, admin, customer_id)
            service.append((time.perf_counter() - began) * 1000)
            if n == 0:
                event.remove(db.engine, "before_cursor_execute", count)
    return [
        figure("context p95, server-side", TARGET_MS, percentile(server_side, 95), "ms"),
        figure("context p50, server-side", None, percentile(server_side, 50), "ms"),
        figure("context p95, service only", None, percentile(service, 95), "ms"),
        figure("context p95, with the test client", None, percentile(http, 95), "ms"),
        figure("context mean, server-side", None, statistics.fmean(server_side), "ms"),
        figure("context queries per request", 5, len(statements), "queries"),
    ]


def figure(name: str, target: float | None, measured: float, unit: str) -> Figure:
    if target is None:
        return Figure(name, "(reported)", measured, unit, True)
    return Figure(name, f"<= {target:g}", measured, unit, measured <= target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 conversations and 200 transactions")
    parser.add_argument("--json", action="store_true", help="print a JSON list of figures")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("MAX_BENCH_DATABASE_URL")
        or os.environ.get("MAX_TEST_DATABASE_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server (a scratch database is created beside it)",
    )
    args = parser.parse_args()
    conversations, transactions, requests = (1000, 200, 100) if args.quick else (5000, 1000, 300)
    db = Database(scratch_database(args.database_url))
    try:
        migrate.upgrade(db)
        customer_id, token = seed(db, conversations, transactions, others=20000)
        figures = measure(db, customer_id, token, requests)
    finally:
        db.dispose()
    for item in figures:
        item.figure += f" ({conversations} conversations, {transactions} transactions)"
    report(figures, args.json)
    return 0 if all(f.passed for f in figures) else 1


if __name__ == "__main__":
    raise SystemExit(main())
