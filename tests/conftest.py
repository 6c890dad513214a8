"""Fixtures: every database test runs on SQLite and PostgreSQL (``db``), with a frozen clock."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from max_server import clock as clock_module
from max_server import logs
from max_server.access import Actor
from max_server.app import create_app
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.schemas import UserCreate
from max_server.services import teams as team_service
from max_server.services import users as user_service
from max_server.settings import Settings, load_settings
from tests.support.databases import BACKENDS, Template
from tests.support.live import LiveServer
from tests.support.log_secrets import SecretWatch

SYSTEM = Actor.system("tests")


# No secret in any log record the suite produces ------------------------------------------------
LOG_WATCH = SecretWatch()
_LEAKS_BETWEEN_TESTS: list[str] = []  # records from session fixtures and stray threads
_WORKER_LEAKS = "max_log_leaks"  # the key in an xdist worker's output


def pytest_configure(config: pytest.Config) -> None:
    logging.getLogger().addHandler(LOG_WATCH)
    # MAX logs at INFO; the root logger passes only warnings on unless told otherwise.
    if logging.getLogger("max").level == logging.NOTSET:
        logging.getLogger("max").setLevel(logging.DEBUG)


@pytest.fixture(autouse=True)
def _no_secret_in_logs() -> Iterator[None]:
    _LEAKS_BETWEEN_TESTS.extend(LOG_WATCH.take())
    yield
    leaks = LOG_WATCH.take()
    if leaks:
        pytest.fail("a secret was logged:\n" + "\n".join(leaks), pytrace=False)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist's controller: what a worker found between tests."""
    _LEAKS_BETWEEN_TESTS.extend(getattr(node, "workeroutput", {}).get(_WORKER_LEAKS, []))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _LEAKS_BETWEEN_TESTS.extend(LOG_WATCH.take())
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller reports it
        workeroutput[_WORKER_LEAKS] = list(_LEAKS_BETWEEN_TESTS)
    elif _LEAKS_BETWEEN_TESTS:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _LEAKS_BETWEEN_TESTS and not hasattr(terminalreporter.config, "workeroutput"):
        terminalreporter.section("secrets in log records outside any test", red=True)
        for leak in _LEAKS_BETWEEN_TESTS:
            terminalreporter.write_line(leak)


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Iterator[dict[str, Template]]:
    workdir = tmp_path_factory.mktemp("db-templates")
    made = {backend: Template(backend, workdir, worker_id) for backend in BACKENDS}
    yield made
    for template in made.values():
        template.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db(backend: str, templates: dict[str, Template], tmp_path: Path) -> Iterator[Database]:
    database = templates[backend].fresh(tmp_path)
    yield database
    database.dispose()


@pytest.fixture(autouse=True)
def _close_outbound_clients() -> Iterator[None]:
    """Pooled outbound HTTP clients never outlive a test (their servers do not either)."""
    yield
    from max_server import httpclients

    httpclients.close_all()


@pytest.fixture
def clock() -> Iterator[FrozenClock]:
    frozen = FrozenClock(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))  # a Monday
    previous = clock_module.use_clock(frozen)
    yield frozen
    clock_module.use_clock(previous)


def make_settings(db: Database, tmp_path: Path, **sections: dict[str, Any]) -> Settings:
    overrides: dict[str, dict[str, Any]] = {
        "server": {"environment": "test", "secret_key": "test-secret-key-0123456789"},
        "database": {"url": db.url},
        "storage": {"path": str(tmp_path / "media")},
    }
    for section, values in sections.items():
        overrides.setdefault(section, {}).update(values)
    settings = load_settings(None, **overrides)
    LOG_WATCH.remember(logs.settings_secrets(settings))
    return settings


@pytest.fixture
def settings(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("MAX_CONFIG", raising=False)
    return make_settings(db, tmp_path)


@pytest.fixture
def app(settings: Settings, db: Database) -> FastAPI:
    return create_app(settings, db=db, background=False)


@pytest.fixture
def api(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def live(app: FastAPI) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server


class People:
    """Creates users and teams through the services, returning ``(user, token)``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.count = 0

    def user(self, role: str = "agent", name: str | None = None, **fields: Any) -> tuple[Any, str]:
        self.count += 1
        name = name or f"{role.title()} {self.count}"
        with self.db.session() as session:
            user, token = user_service.create_user(
                session,
                SYSTEM,
                UserCreate(name=name, email=f"{role}{self.count}@example.com", role=role),  # type: ignore[arg-type]
            )
            for key, value in fields.items():
                setattr(user, key, value)
            session.add(user)
            session.commit()
        return user, token

    def team(self, slug: str, **fields: Any) -> Any:
        from max_server.schemas import TeamCreate

        with self.db.session() as session:
            return team_service.create_team(session, SYSTEM, TeamCreate(slug=slug, **fields))

    def join(self, team: Any, user: Any, role: str = "member") -> None:
        with self.db.session() as session:
            team_service.set_member(session, SYSTEM, str(team.id), user.id, role)


@pytest.fixture
def people(db: Database) -> People:
    return People(db)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def postgres_db(templates: dict[str, Template], tmp_path: Path) -> Iterator[Database]:
    """For tests that are about PostgreSQL itself (several processes, SKIP LOCKED, EXPLAIN)."""
    database = templates["postgres"].fresh(tmp_path)
    yield database
    database.dispose()
