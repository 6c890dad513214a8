"""The cluster under test and its surroundings: three ``max server run`` processes on one
PostgreSQL database (through a cuttable TCP proxy), media in moto's S3, WhatsApp pointed at the
Graph API sandbox, an outbound-webhook receiver, and agents following the live stream."""

from __future__ import annotations

import random
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import col, select

from max_server.channels.whatsapp import payloads
from max_server.channels.whatsapp.sandbox import Sandbox
from max_server.db import Database
from max_server.jobs import registry
from max_server.models import Conversation, Job
from tests.conftest import People, bearer
from tests.reliability.checks import latest_seq, wait_settled
from tests.reliability.conftest import S3_KEYS
from tests.reliability.load import Planned, env_int
from tests.reliability.observers import EventFollower, HookSink
from tests.support.cluster import Cluster


@dataclass(frozen=True)
class Sizes:
    """The load, from ``MAX_RELIABILITY_*``; the defaults are the issue's: 3,000 webhooks (20 %
    of them redeliveries) from 300 customers."""

    webhooks: int = field(default_factory=lambda: env_int("MAX_RELIABILITY_WEBHOOKS", 3000))
    customers: int = field(default_factory=lambda: env_int("MAX_RELIABILITY_CUSTOMERS", 300))
    media_every: int = field(default_factory=lambda: env_int("MAX_RELIABILITY_MEDIA_EVERY", 25))
    replies: int = field(default_factory=lambda: env_int("MAX_RELIABILITY_REPLIES", 40))
    outage_webhooks: int = field(default_factory=lambda: env_int("MAX_RELIABILITY_OUTAGE_WEBHOOKS", 240))
    outage_seconds: int = field(default_factory=lambda: env_int("MAX_RELIABILITY_OUTAGE_SECONDS", 5))
    lease: int = field(default_factory=lambda: env_int("MAX_RELIABILITY_LEASE", 6))
    processes: int = 3

    @property
    def customer_count(self) -> int:
        return self.customers or max(10, self.webhooks // 10)


@dataclass
class Secrets:
    """Every secret the cluster is given or hands out: none may reach a log."""

    app_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    verify_token: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    access_token: str = field(default_factory=lambda: "EAAG" + secrets.token_urlsafe(40))
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    created: list[str] = field(default_factory=list)  # API tokens and webhook secrets

    def all(self) -> list[str]:
        return [
            self.app_secret,
            self.verify_token,
            self.access_token,
            self.secret_key,
            S3_KEYS["secret_access_key"],
            *self.created,
        ]


class Scenario:
    def __init__(self, root: Path, db: Database, moto_url: str, s3: Any, sizes: Sizes) -> None:
        self.root, self.db, self.s3, self.sizes = root, db, s3, sizes
        self.secrets = Secrets()
        self.bucket = f"max-cluster-{secrets.token_hex(6)}"
        s3.create_bucket(Bucket=self.bucket)
        self.sandbox = Sandbox(self.secrets.app_secret, access_token=self.secrets.access_token)
        self.sink = HookSink()
        self.moto_url = moto_url
        self.alive = [True] * sizes.processes
        self.followers: dict[str, EventFollower] = {}
        self.users: dict[str, tuple[int, str]] = {}  # name -> (user id, token)
        self.teams: dict[str, int] = {}
        self.webhook_secret = ""
        self.cluster: Cluster | None = None
        self.start_seq = 0  # the stream position before the first phase's load
        self.messages: list[Planned] = []  # every customer message sent so far
        self._rr = 0
        self._rr_lock = threading.Lock()

    # Lifecycle -------------------------------------------------------------------------------
    def sections(self) -> dict[str, dict[str, Any]]:
        return {
            "server": {"environment": "test", "secret_key": self.secrets.secret_key, "log_level": "info"},
            "database": {"pool_size": 6},
            "storage": {"backend": "s3", "bucket": self.bucket, "endpoint_url": self.moto_url, **S3_KEYS},
            "whatsapp": {
                "app_secret": self.secrets.app_secret,
                "verify_token": self.secrets.verify_token,
                "access_token": self.secrets.access_token,
                "phone_number_id": self.sandbox.phone_number_id,
                "waba_id": self.sandbox.waba_id,
                "graph_url": self.sandbox.graph_url,
                "timeout": "10s",
            },
            "webhooks": {"allow_private_networks": True},
            "jobs": {"lease": f"{self.sizes.lease}s", "poll_interval": 0.5, "concurrency": 4},
        }

    def start(self) -> Scenario:
        self.sandbox.start()
        self.sink.start()
        self.cluster = Cluster(self.root, self.db.url, self.sections(), size=self.sizes.processes).start()
        self._people()
        self._configure()
        return self

    def stop(self) -> None:
        for follower in self.followers.values():
            follower.stop()
        if self.cluster is not None:
            self.cluster.stop()
        self.sink.stop()
        self.sandbox.stop()

    @property
    def servers(self) -> Cluster:
        assert self.cluster is not None
        return self.cluster

    def _people(self) -> None:
        people = People(self.db)
        rows = {slug: people.team(slug) for slug in ("ventas", "soporte")}
        self.teams = {slug: int(row.id) for slug, row in rows.items()}
        for name, role, team in (
            ("admin", "admin", None),
            ("ana", "agent", "ventas"),
            ("beto", "agent", "soporte"),
        ):
            user, token = people.user(role, name.title())
            if team:
                people.join(rows[team], user)
            self.users[name] = (int(user.id), token)
            self.secrets.created.append(token)

    def _configure(self) -> None:
        admin = self.token("admin")
        base = self.servers.urls[0]
        with httpx.Client(base_url=base, headers=bearer(admin), timeout=30) as api:
            channel = self.sandbox.phone_number_id
            done = api.put(f"/api/v1/channels/{channel}/default-team", json={"team": "soporte"})
            assert done.status_code == 200, done.text
            rule = api.post(
                "/api/v1/routing/rules",
                json={"name": "sales", "match_type": "keywords", "pattern": "ventas", "team": "ventas"},
            )
            assert rule.status_code == 201, rule.text
            hook = api.post("/api/v1/webhooks", json={"url": self.sink.url, "events": ["*"]})
            assert hook.status_code == 201, hook.text
            self.webhook_secret = hook.json()["secret"]
            self.secrets.created.append(self.webhook_secret)

    # Helpers ---------------------------------------------------------------------------------
    def token(self, name: str) -> str:
        return self.users[name][1]

    def pick(self, n: int = 0) -> str:
        """Round robin over the processes that are up (as a load balancer would)."""
        with self._rr_lock:
            up = [url for url, alive in zip(self.servers.urls, self.alive, strict=True) if alive]
            self._rr += 1
            return up[self._rr % len(up)]

    def follow(self, name: str, process: int, after: int) -> EventFollower:
        """``name`` follows the stream on ``process`` (on another one while it is down)."""

        def url() -> str:
            return self.servers.urls[process] if self.alive[process] else self.pick()

        # The admin's console passes its token as ?token= (the logs must not keep it).
        follower = EventFollower(name, self.token(name), url, after, via_query=name == "admin").start()
        self.followers[name] = follower
        return follower

    def periodic_kinds(self) -> set[str]:
        registry.load_builtin_handlers()
        return {task.kind for task in registry.periodic_tasks()}

    def settle(self, timeout: float = 240) -> float:
        return wait_settled(self.db, self.periodic_kinds(), timeout)

    def seq(self) -> int:
        return latest_seq(self.db)

    def held_jobs(self, worker: str) -> list[Job]:
        with self.db.session(write=False) as session:
            return list(session.exec(select(Job).where(Job.state == "running", Job.locked_by == worker)))

    def slow_sends(self, seconds: float) -> None:
        """The Graph API takes ``seconds`` to answer each accepted send (a kill lands mid-call)."""
        self.sandbox.before_send_answer(lambda _wamid: time.sleep(seconds))


class Replier:
    """Agents answering their teams' conversations through any process while the load runs."""

    def __init__(self, scenario: Scenario, tag: str) -> None:
        self.scenario, self.tag = scenario, tag
        self.texts: set[str] = set()
        self.refused: list[tuple[int, str]] = []
        self.count = 0
        self._rng = random.Random(tag)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def reply(self) -> bool:
        scenario = self.scenario
        owners = {scenario.teams["ventas"]: "ana", scenario.teams["soporte"]: "beto"}
        with scenario.db.session(write=False) as session:
            open_ = session.exec(
                select(Conversation.id, Conversation.team_id).where(
                    col(Conversation.team_id).in_(list(owners)), Conversation.status != "closed"
                )
            ).all()
        if not open_:
            return False
        conversation_id, team_id = self._rng.choice(open_)
        with self._lock:
            self.count += 1
            text = f"respuesta {self.count} [{self.tag}]"
        try:
            answer = httpx.post(
                f"{scenario.pick()}/api/v1/conversations/{conversation_id}/messages",
                json={"text": text},
                headers=bearer(scenario.token(owners[int(team_id or 0)])),
                timeout=30,
            )
        except httpx.HTTPError as exc:
            self.refused.append((0, type(exc).__name__))  # a process died under it
            return False
        if answer.status_code != 201:
            self.refused.append((answer.status_code, answer.text[:200]))
            return False
        with self._lock:
            self.texts.add(text)
        return True

    def burst(self, count: int) -> int:
        return sum(self.reply() for _ in range(count))

    def start(self, total: int, interval: float) -> Replier:
        def run() -> None:
            while not self._stop.is_set() and len(self.texts) < total:
                self.reply()
                self._stop.wait(interval)

        self._thread = threading.Thread(target=run, name="replier", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def customer_webhook(app_secret: str, wa_id: str, wamid: str, text: str, ts: float) -> tuple[bytes, str]:
    change = payloads.messages_change(
        payloads.DEFAULT_PHONE_NUMBER_ID,
        [payloads.text(wa_id, wamid, text, ts)],
        [payloads.contact(wa_id, "X")],
    )
    raw = payloads.encode(payloads.envelope(payloads.DEFAULT_PHONE_NUMBER_ID, [change]))
    return raw, payloads.sign(raw, app_secret)
