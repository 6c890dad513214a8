"""The demo's own config file (``<data>/config.toml``): an ordinary MAX config, so ``max doctor``,
``max db status`` and ``max server run`` can be pointed at a demo's data directory.

Secrets are made once and kept when the same data directory is used again; ports and URLs are
rewritten on every run (the sandbox and the receiver pick free ports).
"""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from max_server.channels.whatsapp import payloads
from max_server.domain.signatures import new_secret

FILENAME = "config.toml"
HEADER = "# Written by `max demo` for this data directory; rewritten on every run."
MESSAGES_PER_MINUTE = 10  # lower than the default 20, so the demo's burst of 12 trips it


class ForeignDataDir(Exception):
    """``--data`` names a directory with a config or database that ``max demo`` did not make."""


def check_data_dir(data_dir: Path) -> None:
    """Refuses a directory whose config or database the demo would overwrite or change."""
    path = data_dir / FILENAME
    if path.exists() and not path.read_text(encoding="utf-8", errors="replace").startswith(HEADER):
        raise ForeignDataDir(f"{path} was not written by max demo: give --data an empty directory")
    if (data_dir / "max.db").exists() and not path.exists():
        raise ForeignDataDir(
            f"{data_dir / 'max.db'} was not made by max demo: give --data an empty directory"
        )


@dataclass(frozen=True)
class Secrets:
    secret_key: str
    app_secret: str
    verify_token: str
    access_token: str
    chat_app_secret: str


def load_secrets(data_dir: Path) -> Secrets:
    """The secrets of an earlier run in ``data_dir``, or new ones."""
    fresh = Secrets(
        secret_key=secrets.token_hex(32),
        app_secret=secrets.token_hex(16),
        verify_token=secrets.token_urlsafe(16),
        access_token="sandbox-" + secrets.token_urlsafe(24),
        chat_app_secret=new_secret(),
    )
    path = data_dir / FILENAME
    if not path.exists():
        return fresh
    try:
        old = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return fresh
    whatsapp, chat_app = old.get("whatsapp", {}), old.get("chat_app", {})
    return Secrets(
        secret_key=old.get("server", {}).get("secret_key") or fresh.secret_key,
        app_secret=whatsapp.get("app_secret") or fresh.app_secret,
        verify_token=whatsapp.get("verify_token") or fresh.verify_token,
        access_token=whatsapp.get("access_token") or fresh.access_token,
        chat_app_secret=chat_app.get("secret") or fresh.chat_app_secret,
    )


def render(
    data_dir: Path, server_url: str, port: int, graph_url: str, callback_url: str, keys: Secrets
) -> dict[str, dict[str, Any]]:
    """The settings, section by section."""
    return {
        "server": {
            "environment": "development",
            "host": "127.0.0.1",
            "port": port,
            "public_url": server_url,
            "secret_key": keys.secret_key,
        },
        "database": {"url": f"sqlite:///{data_dir / 'max.db'}", "auto_migrate": True},
        "storage": {"backend": "local", "path": str(data_dir / "media")},
        "whatsapp": {
            "app_secret": keys.app_secret,
            "verify_token": keys.verify_token,
            "access_token": keys.access_token,
            "phone_number_id": payloads.DEFAULT_PHONE_NUMBER_ID,
            "waba_id": payloads.DEFAULT_WABA_ID,
            "display_phone_number": payloads.DEFAULT_DISPLAY_PHONE_NUMBER,
            "graph_url": graph_url,
        },
        "chat_app": {"secret": keys.chat_app_secret, "callback_url": callback_url},
        "rate_limits": {"messages_per_minute": MESSAGES_PER_MINUTE},
        # The receiver, the sandbox and the Chat App callback all live on 127.0.0.1.
        "webhooks": {"allow_private_networks": True},
    }


def write(path: Path, sections: dict[str, dict[str, Any]]) -> None:
    """Writes the TOML file readable by its owner only (it holds secrets), atomically."""
    lines = [
        HEADER,
        "# Point other commands at it: max doctor --config " + str(path),
    ]
    for section, values in sections.items():
        lines.append(f"\n[{section}]")
        lines.extend(f"{key} = {_toml(value)}" for key, value in values.items())
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string
