"""Starts and stops everything ``max demo`` runs: the Graph API sandbox, the webhook receiver, the
server (API, worker, scheduler) on one SQLite file, and the simulated customers.

Order matters: the sandbox and the receiver start first (the config names their URLs), the
server's port is bound before the config is written (the config names it too), the database is
migrated and seeded before the server serves, and the templates are approved by Meta's signed
webhook once the server listens.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from max_server import httpclients, logs, migrate
from max_server.channels.whatsapp import payloads
from max_server.channels.whatsapp.sandbox import Sandbox
from max_server.db import Database
from max_server.demo import config, seed
from max_server.demo.customers import Customers
from max_server.demo.receiver import Receiver
from max_server.serve import ThreadedServer
from max_server.settings import load_settings

log = logging.getLogger("max.demo")
DEFAULT_PACE = 3.0


@dataclass(frozen=True)
class DemoOptions:
    data: Path | None = None  # None: a temporary directory, removed on stop
    port: int = 0  # 0: any free port
    pace: float = DEFAULT_PACE
    stderr_log_level: str | None = None  # None: log to the file only (the console owns the terminal)
    urgent_frt_s: int = seed.SHORT_FRT_S  # the urgent customer's first-response target (it breaches)


@dataclass(frozen=True)
class DemoInfo:
    url: str
    admin_token: str
    agent_token: str
    agent_name: str
    sandbox_url: str
    receiver_url: str
    config_path: Path
    data_dir: Path
    log_path: Path
    reused: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "token": self.admin_token,
            "agent_token": self.agent_token,
            "agent": self.agent_name,
            "sandbox_url": self.sandbox_url,
            "sandbox_customer_message": self.sandbox_url + "/_sandbox/customer-message",
            "receiver_url": self.receiver_url,
            "config": str(self.config_path),
            "data_dir": str(self.data_dir),
            "log": str(self.log_path),
            "reused": self.reused,
        }


class _Deferred:
    """An ASGI app that forwards to :attr:`app`, set after the socket is bound (the port goes into
    the settings the real app is built from)."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class Demo:
    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self.temporary = options.data is None
        self.data_dir = (options.data or Path(tempfile.mkdtemp(prefix="max-demo-"))).resolve()
        self.info: DemoInfo | None = None
        self._sandbox: Sandbox | None = None
        self._receiver: Receiver | None = None
        self._server: ThreadedServer | None = None
        self._db: Database | None = None
        self._customers: Customers | None = None
        self._handlers: list[logging.Handler] = []

    def start(self) -> DemoInfo:
        """Everything runs when this returns; on failure, what started is stopped again."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> DemoInfo:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config.check_data_dir(self.data_dir)
        log_path = self.data_dir / "demo.log"
        redactor = self._logging(log_path)
        _ignore_setting_overrides()
        keys = config.load_secrets(self.data_dir)
        redactor.secrets = sorted({*redactor.secrets, *vars(keys).values()}, key=len, reverse=True)

        sandbox = self._sandbox = Sandbox(
            keys.app_secret, keys.access_token, payloads.DEFAULT_PHONE_NUMBER_ID, payloads.DEFAULT_WABA_ID
        ).start()
        receiver = self._receiver = Receiver(keys.chat_app_secret, self.data_dir / "webhooks.jsonl").start()
        deferred = _Deferred()
        server = self._server = ThreadedServer(
            deferred, port=self.options.port, timeout_graceful_shutdown=3, server_header=False
        )
        config_path = self.data_dir / config.FILENAME
        sections = config.render(
            self.data_dir, server.url, server.port, sandbox.graph_url, receiver.chat_app_url, keys
        )
        config.write(config_path, sections)
        settings = load_settings(config_path)

        db = self._db = Database(settings.database_url, pool_size=5)
        migrate.upgrade(db)
        reused = seed.is_seeded(db)
        if reused:
            for template in seed.stored_templates(db):  # this run's sandbox starts empty
                answer = json.loads(bytes(sandbox.template_store.create(template).body))
                sandbox.template_store.set_status(str(answer["id"]), "APPROVED")
            seeded = seed.refresh(db, settings, receiver.events_url, self.options.urgent_frt_s)
        else:
            seeded = seed.seed(db, settings, receiver.events_url, self.options.urgent_frt_s)
        receiver.events_secret = seeded.webhook_secret

        from max_server.app import create_app  # FastAPI and the routers load only when needed

        deferred.app = create_app(settings, db=db, background=True)
        server.start()
        if reused:
            from max_server.services import template_updates

            template_updates.sync(db, settings)  # Meta's (the new sandbox's) ids replace the old ones
        for template_id, name, language in seeded.templates:
            answer = sandbox.template_status(server.url, "APPROVED", template_id, name, language)
            if answer.status_code != 200:
                raise RuntimeError(f"approving template {name} ({language}) failed: {answer.status_code}")

        customers = self._customers = Customers(sandbox, server.url, keys.chat_app_secret, self.options.pace)
        receiver.on_chat_app_reply = lambda reply: customers.on_chat_app_reply(reply.customer_id)
        customers.start()
        self.info = DemoInfo(
            url=server.url,
            admin_token=seeded.admin_token,
            agent_token=seeded.agent_token,
            agent_name=seeded.agent_name,
            sandbox_url=sandbox.url,
            receiver_url=receiver.url,
            config_path=config_path,
            data_dir=self.data_dir,
            log_path=log_path,
            reused=reused,
        )
        log.info("demo running on %s (data in %s)", server.url, self.data_dir)
        return self.info

    def stop(self) -> None:
        """Stops customers, server, receiver and sandbox (in that order), then removes a
        temporary data directory. Safe to call twice, and after a failed start."""
        if self._customers is not None:
            self._customers.stop()
            self._customers = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        for part in (self._receiver, self._sandbox):
            if part is not None:
                part.stop()
        self._receiver = self._sandbox = None
        if self._db is not None:
            self._db.dispose()
            self._db = None
        httpclients.close_all()
        log.info("demo stopped")
        root = logging.getLogger()
        for handler in self._handlers:
            root.removeHandler(handler)
            handler.close()
        self._handlers = []
        if self.temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _logging(self, path: Path) -> logs.Redactor:
        """Everything at info into ``demo.log``; warnings on stderr too when headless."""
        redactor = logs.Redactor()
        root = logging.getLogger()
        file_handler = logging.FileHandler(path, encoding="utf-8")
        handlers: list[logging.Handler] = [file_handler]
        if self.options.stderr_log_level:
            stderr = logging.StreamHandler()
            stderr.setLevel(self.options.stderr_log_level.upper())
            handlers.append(stderr)
        for handler in handlers:
            handler.setFormatter(logs.TextFormatter())
            handler.addFilter(redactor)
            root.addHandler(handler)
        self._handlers = handlers
        root.setLevel(logging.INFO)
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "apscheduler"):
            logger = logging.getLogger(name)
            logger.handlers.clear()
            logger.propagate = True
        logging.getLogger("uvicorn.access").disabled = True  # MAX writes its own access log
        for quiet in ("apscheduler", "alembic", "httpx"):
            logging.getLogger(quiet).setLevel(logging.WARNING)
        return redactor


def _ignore_setting_overrides() -> None:
    """The demo is self-contained: a ``MAX_DATABASE__URL`` (or any ``MAX_<SECTION>__<KEY>``) in
    the environment must not point it at a real database or bucket."""
    for key in [k for k in os.environ if k.startswith("MAX_") and "__" in k]:
        log.warning("the demo ignores %s from the environment", key)
        del os.environ[key]
