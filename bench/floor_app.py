"""The floor for ``bench/ingest.py``: a bare FastAPI endpoint on the same settings that verifies
the webhook signature over the raw body and inserts one row. Nothing MAX does is cheaper than
this, so MAX's throughput is reported as a ratio of it.

Run by the bench as ``uvicorn bench.floor_app:app --workers N`` with ``FLOOR_DATABASE_URL``
and ``FLOOR_APP_SECRET`` set.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Column, Integer, LargeBinary, MetaData, Table, insert
from starlette.concurrency import run_in_threadpool

from max_server.db import Database

SECRET = os.environ["FLOOR_APP_SECRET"].encode()
# The same engine settings MAX uses (SQLite WAL, BEGIN IMMEDIATE for writes; psycopg 3 pool).
database = Database(os.environ["FLOOR_DATABASE_URL"], pool_size=10)
engine = database._write_engine
metadata = MetaData()
received = Table(
    "floor_received", metadata, Column("id", Integer, primary_key=True), Column("body", LargeBinary)
)
metadata.create_all(database.engine, checkfirst=True)
app = FastAPI()


def _store(raw: bytes) -> None:
    with engine.begin() as connection:
        connection.execute(insert(received).values(body=raw))


@app.post("/webhooks/whatsapp")
async def webhook(request: Request) -> JSONResponse:
    raw = await request.body()
    expected = "sha256=" + hmac.new(SECRET, raw, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), request.headers.get("x-hub-signature-256", "").encode()):
        return JSONResponse({"error": "bad signature"}, status_code=401)
    await run_in_threadpool(_store, raw)
    return JSONResponse({"status": "ok"})


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
