"""Where the server is and which token to use: flags, then MAX_URL/MAX_TOKEN, then ``max login``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

DEFAULT_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Connection:
    url: str
    token: str | None
    source: str  # "flags", "environment", "login file" or "default"


def login_file() -> Path:
    return Path(platformdirs.user_config_dir("max")) / "login.json"


def read_login() -> dict[str, str]:
    try:
        data = json.loads(login_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: str(v) for k, v in data.items() if k in ("url", "token")} if isinstance(data, dict) else {}


def write_login(url: str, token: str) -> Path:
    """Stores the connection readable by the user only (0600), atomically."""
    path = login_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"url": url, "token": token}, handle)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def remove_login() -> bool:
    try:
        login_file().unlink()
    except FileNotFoundError:
        return False
    return True


def resolve(url: str | None, token: str | None) -> Connection:
    """``url``/``token`` already include MAX_URL/MAX_TOKEN (typer's envvar); the file fills gaps."""
    if url or token:
        saved = read_login() if not (url and token) else {}
        return Connection(
            url=(url or saved.get("url") or DEFAULT_URL).rstrip("/"),
            token=token or (saved.get("token") if not url or saved.get("url") == url else None),
            source="flags or environment",
        )
    saved = read_login()
    if saved.get("token"):
        return Connection(saved.get("url", DEFAULT_URL).rstrip("/"), saved["token"], "login file")
    return Connection(DEFAULT_URL, None, "default")
