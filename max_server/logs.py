"""Logging: text for people, one JSON object per line for machines; secrets never written.

Every record passes through :class:`Redactor`, which masks MAX tokens, webhook secrets, bearer
credentials, ``token=`` query parameters and the configured secret values themselves.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

_PATTERNS = [
    re.compile(r"max_[A-Za-z0-9_\-]{20,}"),
    re.compile(r"whsec_[A-Za-z0-9+/=]{10,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/\-]+=*"),
    re.compile(r"(?i)((?:access_)?token=)[^&\s\"']+"),
    re.compile(r"(?i)(sha256=)[0-9a-f]{64}"),
]
MASK = "[redacted]"


class Redactor(logging.Filter):
    """Masks secrets in the message and arguments of every record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    _SKIP = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in self._SKIP and not key.startswith("_"):
                entry[key] = value
        if record.exc_text:
            entry["exc"] = record.exc_text
        elif record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = {
            k: v for k, v in record.__dict__.items() if k not in JsonFormatter._SKIP and not k.startswith("_")
        }
        if extras:
            text += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return text


_handler: logging.Handler | None = None


def configure(level: str = "info", fmt: str = "text", secrets: Iterable[str] = ()) -> Redactor:
    """Routes the root logger (and uvicorn's) through one redacting handler on stderr."""
    global _handler
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    redactor = Redactor(secrets)
    handler.addFilter(redactor)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "apscheduler"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # MAX writes its own access log
    for quiet in ("apscheduler", "alembic"):
        logging.getLogger(quiet).setLevel(max(logging.WARNING, root.level))
    _handler = handler
    return redactor


def settings_secrets(settings: Any) -> list[str]:
    """The configured secret values, to be masked wherever they might appear."""
    return [
        settings.server.secret_key,
        settings.whatsapp.app_secret,
        settings.whatsapp.access_token,
        settings.whatsapp.verify_token,
        settings.chat_app.secret,
        settings.storage.secret_access_key,
    ]
