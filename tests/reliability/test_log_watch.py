"""The suite-wide search of log records for secrets (``tests/conftest.py`` and
``tests/support/log_secrets.py``): what it reports, what it leaves alone, and that it fails the
test, or the run, that logged a secret, with and without xdist."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from max_server.domain.signatures import new_secret
from max_server.domain.tokens import new_token
from max_server.logs import Redactor
from tests.support.log_secrets import SecretWatch

ROOT = Path(__file__).resolve().parents[2]


def record(name: str, message: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    made = logging.LogRecord(name, logging.INFO, __file__, 1, message, args or None, None)
    if exc is not None:
        made.exc_info = (type(exc), exc, None)
    return made


def test_tokens_secrets_and_configured_values_are_reported() -> None:
    watch = SecretWatch()
    watch.remember(["app-secret-0123456789", "short", None])
    token, secret = new_token(), new_secret()
    watch.emit(record("max.api", "made %s", token))
    watch.emit(record("max.webhooks", "signing with " + secret))
    watch.emit(record("max.jobs", "failed", exc=ValueError("app-secret-0123456789 refused")))
    watch.emit(record("uvicorn.error", "config app-secret-0123456789"))  # a library's record too
    found = watch.take()
    assert [line.split(":", 1)[0] for line in found] == [
        "INFO max.api",
        "INFO max.webhooks",
        "INFO max.jobs",
        "INFO uvicorn.error",
    ]
    assert token[:10] in found[0] and token not in found[0]  # reported, not repeated
    assert watch.take() == []


def test_redacted_forms_and_ordinary_words_are_not_reported() -> None:
    watch = SecretWatch()
    token = new_token()
    # uvicorn logs a websocket's query string; `max server run` writes it through the Redactor.
    watch.emit(record("uvicorn.error", '"WebSocket /api/v1/events?token=%s" [accepted]', token))
    watch.emit(record("max.api", Redactor().redact(f"Authorization: Bearer {token}")))
    watch.emit(record("max.api", Redactor().redact(f"secret {new_secret()} and {token}")))
    watch.emit(record("max.metrics", "max_webhooks_received_total and max_http_requests_total_created"))
    watch.emit(record("max.jobs", "max_attempts_reached_for_every_delivery_of_this_subscription"))
    assert watch.take() == []


def test_a_max_record_is_searched_before_redaction() -> None:
    watch = SecretWatch()
    watch.emit(record("max.access", "GET /api/v1/events?token=%s 401", new_token()))
    assert len(watch.take()) == 1


IN_A_TEST = """
import logging

TOKEN = "max_" + "Ab1" * 15


def test_logs_a_token():
    logging.getLogger("max.api").info("token %s", TOKEN)


def test_logs_a_redacted_url():
    logging.getLogger("uvicorn.error").info("GET /events?token=%s", TOKEN)
"""

BETWEEN_TESTS = """
import logging

import pytest

TOKEN = "max_" + "Ab1" * 15


@pytest.fixture(scope="session")
def noisy_session():
    yield
    logging.getLogger("max.session").warning("closing with %s", TOKEN)


def test_quiet(noisy_session):
    logging.getLogger("max.api").info("nothing to see")
"""


def run_pytest(tmp_path: Path, source: str, xdist: list[str]) -> tuple[int, str]:
    """A separate pytest run of ``source`` with the suite's conftest as a plugin."""
    (tmp_path / "test_leaky.py").write_text(source)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "-c",
            str(ROOT / "pyproject.toml"),
            *xdist,
            str(tmp_path / "test_leaky.py"),
            "-rA",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.returncode, result.stdout + result.stderr


def test_the_test_that_logged_a_secret_fails(tmp_path: Path) -> None:
    code, output = run_pytest(tmp_path, IN_A_TEST, [])
    assert code == 1, output
    assert "ERROR at teardown of test_logs_a_token" in output, output
    assert "a secret was logged" in output and "INFO max.api: an API token max_Ab1Ab1" in output
    assert re.search(r"PASSED \S*test_leaky.py::test_logs_a_redacted_url", output), output
    assert "1 error" in output and "outside any test" not in output, output


@pytest.mark.parametrize("xdist", [[], ["-n", "1"]], ids=["serial", "xdist"])
def test_a_secret_logged_between_tests_fails_the_run(tmp_path: Path, xdist: list[str]) -> None:
    """Under xdist the worker hands what it found to the controller, which fails the run."""
    code, output = run_pytest(tmp_path, BETWEEN_TESTS, xdist)
    assert code == 1, output
    assert "1 passed" in output and "error" not in output.split("short test summary")[-1].lower()
    assert "secrets in log records outside any test" in output, output
    assert "WARNING max.session: an API token max_Ab1Ab1" in output, output
