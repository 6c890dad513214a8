"""A logging handler on the root logger for the whole test session: every record any test
produces is searched for MAX API tokens, ``whsec_`` secrets and the secrets the tests configured
(``tests.conftest.make_settings`` names them). ``tests/conftest.py`` fails the test during which
a record held one, or the session when it came between tests.

MAX's own records (``max`` and ``max.*``) must hold no secret even before redaction: they are
searched as logged. Libraries' records (uvicorn logs a websocket's ``?token=…``) are searched as
``max server run`` writes them, through :class:`max_server.logs.Redactor`'s patterns, so those
redacted forms are not reported.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

from max_server.logs import Redactor

# ``max_`` + secrets.token_urlsafe(32): 43 characters, so at least 40 and some upper case or a
# digit (identifiers such as metric names are lower case words and underscores).
API_TOKEN = re.compile(r"max_[A-Za-z0-9_\-]{40,}")
WEBHOOK_SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]{20,}")
MIN_KNOWN_LENGTH = 8  # shorter configured values ("x", "tok") would match ordinary words


def _random_looking(token: str) -> bool:
    body = token[4:]
    return any(c.isupper() or c.isdigit() for c in body)


class SecretWatch(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.known: set[str] = set()
        self._found: list[str] = []
        self._guard = threading.Lock()
        self._patterns = Redactor()  # the patterns only: the configured values are what we look for

    def remember(self, values: Iterable[str | None]) -> None:
        """Secrets a test configured: none may appear in a record from now on."""
        with self._guard:
            self.known.update(v for v in values if v and len(v) >= MIN_KNOWN_LENGTH)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            elif record.exc_text:
                text += "\n" + record.exc_text
        except Exception:  # a record that cannot be formatted is the logging module's to report
            return
        if record.name != "max" and not record.name.startswith("max."):
            text = self._patterns.redact(text)
        leaks = self.search(text)
        if leaks:
            with self._guard:
                self._found += [f"{record.levelname} {record.name}: {leak}" for leak in leaks]

    def search(self, text: str) -> list[str]:
        """What in ``text`` is a secret, each shortened to a recognisable prefix."""
        leaks = [f"an API token {m[:10]}…" for m in API_TOKEN.findall(text) if _random_looking(m)]
        leaks += [f"a webhook secret {m[:10]}…" for m in WEBHOOK_SECRET.findall(text)]
        with self._guard:
            known = list(self.known)
        leaks += [f"a configured secret {s[:4]}…" for s in known if s in text]
        return leaks

    def take(self) -> list[str]:
        """What was found since the last call."""
        with self._guard:
            found, self._found = self._found, []
        return found
