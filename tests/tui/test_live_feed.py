"""The live worker's protocol: resync means reload, replays never repeat an event, a revoked
token ends the stream. The first two use scripted frames (a server cannot be made to prune its
events on cue); the revocation runs against the real server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from textual.message import Message

from max_tui.live import FrameStream, LiveEvent, LiveFeed, LiveReady, LiveState
from max_tui.screens.connection import ConnectionProblemScreen
from tests.support.live import LiveServer
from tests.tui.conftest import Agent, ready_screen, wait_for
from tests.tui.test_live_console import started

pytestmark = pytest.mark.anyio


class Script:
    """Connections that play a list of frames each, then end (as a dropped connection does)."""

    def __init__(self, *connections: list[dict[str, Any]]) -> None:
        self.connections = list(connections)
        self.urls: list[str] = []

    @asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[FrameStream]:
        self.urls.append(url)
        frames = self.connections.pop(0) if self.connections else None
        if frames is None:
            raise OSError("no more scripted connections")
        yield Played(frames)


class Played:
    def __init__(self, frames: list[dict[str, Any]]) -> None:
        self.frames = frames

    async def __aiter__(self) -> AsyncIterator[str]:
        for frame in self.frames:
            yield json.dumps(frame)

    async def close(self) -> None:
        return None


def event(seq: int) -> dict[str, Any]:
    created = "2026-03-02T15:00:00+00:00"
    return {"id": str(seq), "seq": seq, "type": "test.event", "created_at": created, "data": {}}


async def run_until(feed: LiveFeed, posted: list[Message], done: Any) -> None:
    task = asyncio.ensure_future(feed.run())
    try:
        for _ in range(200):
            if done(posted):
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"never done: {posted}")
    finally:
        task.cancel()


async def test_resync_reloads_and_replays_never_repeat_an_event() -> None:
    script = Script(
        [{"control": "ready", "latest_seq": 4}, event(5), event(6)],
        [event(6), event(7), {"control": "ready", "latest_seq": 7}],  # overlaps what we saw
        [{"control": "resync", "latest_seq": 20}, {"control": "ready", "latest_seq": 20}, event(21)],
    )
    posted: list[Message] = []
    feed = LiveFeed("http://max.test", script.connect, posted.append, first_delay=0.01)

    def reached_21(messages: list[Message]) -> bool:
        return any(isinstance(m, LiveEvent) and m.envelope["seq"] == 21 for m in messages)

    await run_until(feed, posted, reached_21)

    assert script.urls == [
        "ws://max.test/api/v1/events",
        "ws://max.test/api/v1/events?after=6",
        "ws://max.test/api/v1/events?after=7",
    ]
    seqs = [m.envelope["seq"] for m in posted if isinstance(m, LiveEvent)]
    assert seqs == [5, 6, 7, 21]
    assert [m.reload for m in posted if isinstance(m, LiveReady)] == [True, False, True]
    assert "reconnecting" in [m.state for m in posted if isinstance(m, LiveState)]


@pytest.mark.slow
async def test_a_revoked_token_ends_the_stream_and_shows_the_problem_screen(
    console: Any, agent: Agent, server: LiveServer
) -> None:
    app = console()
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        headers = {"Authorization": f"Bearer {agent.token}"}
        tokens = httpx.get(f"{server.url}/api/v1/users/{agent.user.id}/tokens", headers=headers)
        [token] = tokens.json()["tokens"]
        httpx.delete(f"{server.url}/api/v1/tokens/{token['id']}", headers=headers).raise_for_status()
        # The server re-checks open streams' tokens every few seconds and closes them with 4401.
        await wait_for(pilot, lambda: app.live.state == "refused", "the stream to be refused", timeout=30)
        screen = await wait_for(
            pilot, lambda: ready_screen(app, ConnectionProblemScreen), "the problem screen"
        )
        assert "refused your token" in str(screen.query_one("#problem-title").render())
