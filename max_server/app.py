"""The FastAPI application: routers, error handlers, and the background work's lifespan."""

from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from max_server import __version__, api, metrics
from max_server.api import errors
from max_server.db import Database
from max_server.runtime import Runtime
from max_server.settings import Settings, load_settings

log = logging.getLogger("max.access")


def create_app(settings: Settings, *, db: Database | None = None, background: bool = True) -> FastAPI:
    """Builds the app. ``background=False`` leaves out the job worker and scheduler (tests,
    tools); the sequencer and the live stream always run."""
    database = db or Database(
        settings.database_url, pool_size=settings.database.pool_size, echo=settings.database.echo
    )
    owns_db = db is None

    runtime = Runtime(database, settings, jobs=background)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(_prepare, database, settings)
        runtime.start()
        try:
            yield
        finally:
            await asyncio.to_thread(runtime.stop)
            if owns_db:
                database.dispose()

    app = FastAPI(
        title="MAX",
        version=__version__,
        description="Customer service on WhatsApp and your own Chat App.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = database
    app.state.runtime = runtime
    errors.install(app)

    app.add_middleware(AccessLog)

    for router in routers():
        app.include_router(router)
    return app


class AccessLog:
    """One log record and one metric per HTTP request. A plain ASGI middleware: Starlette's
    ``BaseHTTPMiddleware`` (``@app.middleware("http")``) runs the app in a task of its own and
    streams the response through a memory channel, over a millisecond per request at webhook
    rates. A request that raises logs nothing here: the error handler logs it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        # Shared with the request (and any copy of its scope): the auth dependency puts the actor here.
        state = scope.setdefault("state", {})

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, send_status)
        method = scope["method"]
        metrics.HTTP_REQUESTS.labels(method, metrics.status_class(status)).inc()
        if log.isEnabledFor(logging.INFO):
            actor = state.get("actor")
            log.info(
                "%s %s %s",
                method,
                Request(scope).url.path,
                status,
                extra={
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "user_id": getattr(actor, "user_id", None),
                },
            )


# Requests are matched against routes in order, each miss costing a few microseconds: the channel
# webhooks (by far the most frequent requests, and no path overlaps theirs) are matched first.
_FIRST = ("webhooks",)


def routers() -> list[APIRouter]:
    """Every module of ``max_server.api`` that defines ``router`` contributes its routes."""
    found = []
    modules = pkgutil.iter_modules(api.__path__)
    for module in sorted(modules, key=lambda m: (m.name not in _FIRST, m.name)):
        loaded = importlib.import_module(f"{api.__name__}.{module.name}")
        router = getattr(loaded, "router", None)
        if isinstance(router, APIRouter):
            found.append(router)
    return found


def _prepare(database: Database, settings: Settings) -> None:
    """Start-up work that needs the database: the configured channel accounts exist."""
    from max_server.services.channels import ensure_config_accounts

    with database.session() as session:
        ensure_config_accounts(session, settings)


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (several worker processes): settings from MAX_CONFIG."""
    settings = load_settings()
    from max_server import logs

    logs.configure(settings.server.log_level, settings.server.log_format, logs.settings_secrets(settings))
    return create_app(settings)
