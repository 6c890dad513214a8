"""Job kinds, their handlers and retry policies, and the periodic tasks that enqueue them."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from max_server.db import Database
    from max_server.settings import Settings


class RetryLater(Exception):
    """Raised by a handler to run the job again after ``delay`` seconds (or the policy's)."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


class PermanentFailure(Exception):
    """Raised by a handler when retrying cannot help: the job goes straight to ``dead``."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 5.0
    max_delay: float = 3600.0
    # An explicit schedule (seconds after each failed attempt) overrides the exponential one.
    schedule: Sequence[float] = ()

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if self.schedule:
            return float(self.schedule[min(attempt, len(self.schedule)) - 1])
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return (rng or random).uniform(ceiling / 2, ceiling)  # "equal jitter"


@dataclass
class JobContext:
    """What a handler gets besides its payload."""

    db: Database
    settings: Settings
    job_id: int
    kind: str
    attempt: int
    max_attempts: int
    worker_id: str
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts


Handler = Callable[[JobContext, dict[str, Any]], None]
# Several claimed jobs of one kind in one call; per job, None (done) or what its handler would
# have raised. Lets a kind share its reads and writes across a batch (10,000 webhook deliveries
# are not 10,000 loads and 10,000 transactions).
BatchHandler = Callable[[list[JobContext], list[dict[str, Any]]], list[BaseException | None]]


@dataclass(frozen=True)
class JobKind:
    name: str
    handler: Handler
    policy: RetryPolicy
    batch: BatchHandler | None = None


@dataclass(frozen=True)
class PeriodicTask:
    """Every ``interval`` seconds, once per cluster, enqueue job ``kind``."""

    name: str
    interval: int
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)


_KINDS: dict[str, JobKind] = {}
_PERIODIC: dict[str, PeriodicTask] = {}


def handler(name: str, policy: RetryPolicy | None = None) -> Callable[[Handler], Handler]:
    """Registers a handler for job kind ``name``. Handlers must be idempotent."""

    def register(fn: Handler) -> Handler:
        _KINDS[name] = JobKind(name, fn, policy or RetryPolicy())
        return fn

    return register


def batch_handler(name: str) -> Callable[[BatchHandler], BatchHandler]:
    """Registers a batch form for the already registered kind ``name`` (same contract as its
    handler, job by job: idempotent, and a job's exception retries that job alone)."""

    def register(fn: BatchHandler) -> BatchHandler:
        _KINDS[name] = replace(_KINDS[name], batch=fn)
        return fn

    return register


def periodic(
    name: str, interval: int, kind: str | None = None, payload: dict[str, Any] | None = None
) -> None:
    _PERIODIC[name] = PeriodicTask(name, interval, kind or name, payload or {})


def kind(name: str) -> JobKind | None:
    return _KINDS.get(name)


def policy_for(name: str) -> RetryPolicy:
    found = _KINDS.get(name)
    return found.policy if found else RetryPolicy()


def kinds() -> dict[str, JobKind]:
    return dict(_KINDS)


def periodic_tasks() -> list[PeriodicTask]:
    return list(_PERIODIC.values())


def load_builtin_handlers() -> None:
    """Imports every module of ``max_server.handlers`` (each registers its kinds and hooks)."""
    import importlib
    import pkgutil

    from max_server import handlers

    for module in pkgutil.iter_modules(handlers.__path__):
        importlib.import_module(f"{handlers.__name__}.{module.name}")
