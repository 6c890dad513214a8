"""``MaxApp``: the agent console. Run it with ``max tui``.

The app checks the server and token (``GET /api/v1/me``), shows a clear screen with retry when
that fails, then opens the main screen, keeps the agent ``online`` with a heartbeat, runs the
live stream worker and routes its events to the screen. On the way out it saves drafts and sets
the agent ``offline``.

Everything the console depends on is injectable for tests: the HTTP transport, the live
stream's connector, the clock, the time zone, the data directory, and the system's file opener.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime, tzinfo
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from textual import work
from textual.app import App, SystemCommand
from textual.screen import Screen
from textual.timer import Timer

from max_server.client import ApiError, AsyncMaxClient
from max_tui.formatting import system_now
from max_tui.live import Connector, LiveEvent, LiveFeed, LiveReady, LiveState, websocket_connector
from max_tui.media import MediaFiles, Opener
from max_tui.screens.connection import ConnectionProblemScreen
from max_tui.screens.starting import StartingScreen
from max_tui.storage import DraftStore, Preferences, default_data_dir, write_json_atomic

if TYPE_CHECKING:
    from max_tui.api import ConsoleApi
    from max_tui.formatting import Now
    from max_tui.screens.main import MainScreen

log = logging.getLogger("max.tui")

HEARTBEAT_SECONDS = 30.0
OFFLINE_TIMEOUT_SECONDS = 2.0
DRAFT_SAVE_DELAY_SECONDS = 0.5
DARK_THEME, LIGHT_THEME = "textual-dark", "textual-light"


def pick_theme(saved: object, environ: dict[str, str] | None = None) -> str:
    """``MAX_THEME``, else the agent's last choice, else light on terminals that say their
    background is light (``COLORFGBG``, set by xterm, rxvt, Konsole, iTerm2…), else dark."""
    env = os.environ if environ is None else environ
    if env.get("MAX_THEME"):
        return env["MAX_THEME"]
    if isinstance(saved, str) and saved:
        return saved
    background = env.get("COLORFGBG", "").split(";")[-1]
    return LIGHT_THEME if background in ("7", "15") else DARK_THEME


def local_timezone() -> tzinfo:
    zone = datetime.now().astimezone().tzinfo
    assert zone is not None
    return zone


class MaxApp(App[None]):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses elsewhere find it too
    TITLE = "MAX"

    def __init__(
        self,
        url: str,
        token: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        connector: Connector | None = None,
        now: Now | None = None,
        tz: tzinfo | None = None,
        data_dir: Path | None = None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        opener: Opener | None = None,
        save_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.server_url = url.rstrip("/")
        self.client = AsyncMaxClient(self.server_url, token, transport=transport, timeout=15.0)
        self.api: ConsoleApi | None = None  # loaded after the first paint (see start_session)
        self.now: Now = now or system_now
        self.tz = tz or local_timezone()
        self.data_dir = data_dir or default_data_dir()
        self.prefs = Preferences(self.data_dir)
        # Signed media links are fetched without the token, through the same transport (tests).
        self.files = MediaFiles(
            self.data_dir / "cache", save_dir=save_dir, opener=opener, transport=transport
        )
        self.live = LiveFeed(self.server_url, connector or websocket_connector(token), self.post_message)
        self.heartbeat_seconds = heartbeat_seconds
        self.main: MainScreen | None = None
        self.drafts: DraftStore | None = None
        self.online = False
        self._loaded = False
        self._draft_timer: Timer | None = None
        self._file_lock = asyncio.Lock()
        self.theme = pick_theme(self.prefs.get("theme"))

    def get_default_screen(self) -> Screen[None]:
        return StartingScreen(self.server_url)

    def on_mount(self) -> None:
        self.start_session()

    # Session -----------------------------------------------------------------------------------
    @work(exclusive=True, group="session", exit_on_error=False)
    async def start_session(self) -> None:
        # The main screen, its widgets and the wire models load here, after the first paint:
        # the agent sees "connecting…" at once instead of a blank terminal.
        from max_tui.api import ConsoleApi
        from max_tui.screens.main import MainScreen
        from max_tui.session import ConsoleContext
        from max_tui.state import ConversationStore, Viewer

        if self.api is None:
            self.api = ConsoleApi(self.client)
        try:
            me = await self.api.me()
        except ApiError as exc:
            self.push_screen(ConnectionProblemScreen(self.server_url, exc), self._after_problem)
            return
        if self.main is None:
            viewer = Viewer.from_me(me)
            self.drafts = await asyncio.to_thread(DraftStore, self.data_dir, self.server_url, viewer.user_id)
            context = ConsoleContext(
                api=self.api,
                viewer=viewer,
                store=ConversationStore(viewer),
                drafts=self.drafts,
                drafts_changed=self.drafts_changed,
                now=self.now,
                tz=self.tz,
                server=self.server_url,
                files=self.files,
                prefs=self.prefs,
                remember=self._save_preference,
            )
            self.main = MainScreen(context)
            await self.push_screen(self.main)
            self.set_interval(self.heartbeat_seconds, self.heartbeat)
        self.heartbeat()
        # The coroutine function, not a coroutine: a worker cancelled before it starts leaves none unawaited.
        feed: Callable[[], Coroutine[Any, Any, Any]] = self.live.run
        self.run_worker(feed, name="live", group="live", exclusive=True, exit_on_error=False)

    def _after_problem(self, result: str | None) -> None:
        if result == "retry":
            self.start_session()

    @work(exclusive=True, group="presence", exit_on_error=False)
    async def heartbeat(self) -> None:
        """Keeps the agent ``online`` (the server turns silent agents ``away``)."""
        if self.api is None:
            return
        try:
            await self.api.presence("online")
        except ApiError as exc:
            log.info("heartbeat failed: %s", exc)
            return
        self.online = True

    # Live stream -------------------------------------------------------------------------------
    async def on_live_event(self, message: LiveEvent) -> None:
        if self.main is not None:
            await self.main.apply_event(message.envelope)

    def on_live_ready(self, message: LiveReady) -> None:
        if self.main is not None and (message.reload or not self._loaded):
            self._loaded = True
            self.main.reload()

    def on_live_state(self, message: LiveState) -> None:
        if self.main is None:
            return
        self.main.set_live_state(message.state, message.detail)
        if message.state == "reconnecting" and not self._loaded:
            self._loaded = True  # no stream yet: show the queue anyway; the stream catches up
            self.main.reload()
        if message.state == "refused":
            error = ApiError(401, "invalid_token", message.detail or "the token was refused")
            self.push_screen(ConnectionProblemScreen(self.server_url, error), self._after_problem)

    # Drafts and preferences --------------------------------------------------------------------
    def drafts_changed(self) -> None:
        if self._draft_timer is None:
            self._draft_timer = self.set_timer(DRAFT_SAVE_DELAY_SECONDS, self._save_drafts)

    async def _save_drafts(self) -> None:
        self._draft_timer = None
        if self.drafts is None or not self.drafts.dirty:
            return
        snapshot = self.drafts.snapshot()
        async with self._file_lock:  # one writer at a time, in order
            await asyncio.to_thread(write_json_atomic, self.drafts.path, snapshot)

    def watch_theme(self, theme: str) -> None:
        if self.is_running and theme != self.prefs.get("theme"):
            self._save_preference("theme", theme)

    @work(group="prefs", exit_on_error=False)
    async def _save_preference(self, key: str, value: object) -> None:
        values = self.prefs.set(key, value)
        async with self._file_lock:
            await asyncio.to_thread(write_json_atomic, self.prefs.path, values)

    # Commands and quitting ---------------------------------------------------------------------
    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        from max_tui.keys import MAIN_BINDINGS
        from max_tui.screens.main import MainScreen

        if isinstance(screen, MainScreen):
            for binding in MAIN_BINDINGS:
                if not binding.tooltip:
                    continue
                key = binding.key_display or binding.key.split(",")[0]
                yield SystemCommand(
                    binding.tooltip or binding.description,
                    f"{binding.description} ({key})",
                    partial(screen.run_action, binding.action),
                )
            yield SystemCommand(
                "Undo the customer's latest link",
                "Give the other customer back everything the link moved (also a button in the sidebar)",
                partial(screen.run_action, "undo_link"),
            )

    async def action_quit(self) -> None:
        if self.main is not None and self.main.is_attached:
            self.main.save_draft()
        self.exit()

    async def on_unmount(self) -> None:
        if self.drafts is not None and self.drafts.dirty:
            self.drafts.save()  # the last keystrokes; the screen is gone, so blocking is harmless
        if self.online and self.api is not None:
            with contextlib.suppress(ApiError, TimeoutError):
                await asyncio.wait_for(self.api.presence("offline"), OFFLINE_TIMEOUT_SECONDS)
        await self.client.aclose()
