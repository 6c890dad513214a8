"""The live event stream: ``GET``/websocket ``/api/v1/events?after=<seq>``.

The websocket takes the token in the ``Authorization`` header or, for clients that cannot set
headers, a ``token`` query parameter. It first replays every event after ``after`` the user may
see, sends ``{"control": "ready", "latest_seq": N}``, then pushes new events as they are
sequenced. A too-old ``after`` gets ``{"control": "resync", …}``. Revoked tokens are closed
with code 4401. While the database is unreachable a new connection is refused with 503 (close
code 1013, "try again later"), and an open one stays open: its token is checked again shortly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.websockets import WebSocketState

from max_server import metrics
from max_server.access import Actor
from max_server.api.deps import AgentActor, SessionDep, authenticate_token
from max_server.db import Database
from max_server.errors import AppError, Unauthorized, Unavailable
from max_server.realtime import Subscriber, control
from max_server.schemas import EventEnvelope, EventList
from max_server.services import events, users
from max_server.services.pagination import cursor_int, encode_cursor

log = logging.getLogger("max.realtime")
router = APIRouter(tags=["events"])
RECHECK_SECONDS = 10.0
RETRY_SECONDS = 2.0  # after a recheck the database could not answer
CLOSE_UNAUTHORIZED = 4401
CLOSE_LAGGING = 4408
CLOSE_TRY_AGAIN = 1013


@router.get("/api/v1/events", response_model=EventList)
def list_events(
    session: SessionDep,
    actor: AgentActor,
    after: Annotated[int, Query(ge=0)] = 0,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> EventList:
    """Sequenced events after ``after`` that the caller may see (poll instead of the websocket)."""
    start = cursor_int(cursor, "seq") or after
    rows, position = events.visible_after(session, actor, start, limit)
    latest = events.latest_seq(session)
    return EventList(
        events=[EventEnvelope.model_validate(events.envelope(e)) for e in rows],
        latest_seq=latest,
        next_cursor=encode_cursor(seq=position) if position < latest and len(rows) == limit else None,
    )


def _token_from(websocket: WebSocket, query_token: str | None) -> str:
    header = websocket.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return query_token or ""


def _refresh(db: Database, actor: Actor, token_id: int) -> Actor | None:
    """The actor with fresh team memberships, or None if the token no longer works."""
    with db.session(write=False) as session:
        if not users.token_is_valid(session, token_id):
            return None
        assert actor.user_id is not None
        return users.actor_for(session, users.get_user(session, actor.user_id))


def _replay(db: Database, actor: Actor, after: int) -> tuple[bool, int, list[str]]:
    import json

    with db.session(write=False) as session:
        if events.needs_resync(session, after):
            return True, events.latest_seq(session), []
        texts: list[str] = []
        cursor = after
        while True:
            rows, position = events.visible_after(session, actor, cursor, 500)
            texts += [json.dumps(events.envelope(e), ensure_ascii=False) for e in rows]
            if position == cursor:
                break
            cursor = position
        return False, cursor, texts


@router.websocket("/api/v1/events")
async def stream(websocket: WebSocket, after: int | None = None, token: str | None = None) -> None:
    db: Database = websocket.app.state.db
    try:
        actor, token_id = await run_in_threadpool(authenticate_token, db, _token_from(websocket, token))
    except Unauthorized as exc:
        await _deny(websocket, exc, CLOSE_UNAUTHORIZED)
        return
    except SQLAlchemyError as exc:
        log.warning("live stream refused: the database is unavailable (%s)", type(exc).__name__)
        unavailable = Unavailable(
            "the database is unavailable; try again shortly", code="database_unavailable"
        )
        await _deny(websocket, unavailable, CLOSE_TRY_AGAIN)
        return
    broadcaster = websocket.app.state.runtime.broadcaster
    await websocket.accept()
    subscriber = Subscriber(actor, asyncio.get_running_loop())
    broadcaster.add(subscriber)
    metrics.CONNECTED_AGENTS.inc()
    receiver = asyncio.create_task(_drain_client(websocket))
    try:
        if after is None:
            last = await run_in_threadpool(_latest, db)
        else:
            resync, last, texts = await run_in_threadpool(_replay, db, actor, after)
            if resync:
                await websocket.send_text(
                    control("resync", latest_seq=last, reason="events after that seq were pruned")
                )
            for text in texts:
                await websocket.send_text(text)
        await websocket.send_text(control("ready", latest_seq=last))
        await _pump(websocket, subscriber, receiver, db, token_id, last)
    except WebSocketDisconnect:
        pass
    except SQLAlchemyError as exc:
        # The replay could not be read: the client resumes from its last seq when it reconnects.
        log.warning("live stream closed: the database is unavailable (%s)", type(exc).__name__)
        if websocket.client_state == WebSocketState.CONNECTED:
            await websocket.close(CLOSE_TRY_AGAIN, "database unavailable")
    finally:
        broadcaster.remove(subscriber)
        metrics.CONNECTED_AGENTS.dec()
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receiver


def _latest(db: Database) -> int:
    with db.session(write=False) as session:
        return events.latest_seq(session)


async def _pump(
    websocket: WebSocket,
    subscriber: Subscriber,
    receiver: asyncio.Task[None],
    db: Database,
    token_id: int,
    last: int,
) -> None:
    loop = asyncio.get_running_loop()
    recheck_at = loop.time() + RECHECK_SECONDS
    while True:
        getter = asyncio.ensure_future(subscriber.queue.get())
        done, _ = await asyncio.wait(
            {getter, receiver},
            timeout=max(0.0, recheck_at - loop.time()),
            return_when=asyncio.FIRST_COMPLETED,
        )
        if receiver in done:
            getter.cancel()
            return  # the client went away
        if getter in done:
            # Everything queued meanwhile goes out now, without a wait per frame.
            items = [getter.result()]
            while not subscriber.queue.empty():
                items.append(subscriber.queue.get_nowait())
            for item in items:
                if item is None:  # fell too far behind: resume from the database
                    await websocket.send_text(control("resync", latest_seq=last, reason="client too slow"))
                    await websocket.close(CLOSE_LAGGING)
                    return
                seq, text = item
                if seq > last:
                    await websocket.send_text(text)
                    last = seq
        else:
            getter.cancel()
        if loop.time() >= recheck_at:
            recheck_at = loop.time() + RECHECK_SECONDS
            try:
                fresh = await run_in_threadpool(_refresh, db, subscriber.actor, token_id)
            except SQLAlchemyError as exc:
                # Nothing new is sequenced while the database is away: keep the stream, ask again soon.
                log.warning("live stream: cannot recheck the token (%s)", type(exc).__name__)
                recheck_at = loop.time() + RETRY_SECONDS
                continue
            if fresh is None:
                await websocket.close(CLOSE_UNAUTHORIZED, "token revoked")
                return
            subscriber.actor = fresh


async def _drain_client(websocket: WebSocket) -> None:
    """Reads (and ignores) what the client sends, so a disconnect is noticed at once."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _deny(websocket: WebSocket, exc: AppError, close_code: int) -> None:
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(JSONResponse(exc.body(), status_code=exc.status_code))
    else:
        await websocket.close(close_code, exc.code)
