"""What the console keeps between runs, in the user's data directory: drafts and preferences.

Files are JSON, written atomically (a temporary file in the same directory, fsynced, then
``os.replace``), so a crash or a second console never leaves a half-written file. Drafts are
kept per server and user, so two accounts on one machine do not see each other's drafts.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import platformdirs

APP_DIR_NAME = "max"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_DIR_NAME))


def read_json(path: Path) -> dict[str, Any]:
    """The file's object, or ``{}`` when it is missing or unreadable (never fatal for a console)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Writes ``data`` so that readers see the old file or the new one, never a mix (mode 0600:
    drafts are customers' conversations)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class DraftStore:
    """One draft per conversation, for one server and user. ``set`` is cheap (memory only);
    ``snapshot`` + ``write_json_atomic`` persist it, off the event loop (see ``MaxApp``)."""

    def __init__(self, data_dir: Path, server_url: str, user_id: str) -> None:
        key = hashlib.sha256(f"{server_url.rstrip('/')}|{user_id}".encode()).hexdigest()[:16]
        self.path = data_dir / "drafts" / f"{key}.json"
        stored = read_json(self.path).get("drafts", {})
        self._drafts: dict[str, str] = {str(k): v for k, v in stored.items() if isinstance(v, str) and v}
        self.dirty = False

    def get(self, conversation_id: str) -> str:
        return self._drafts.get(conversation_id, "")

    def set(self, conversation_id: str, text: str) -> None:
        if self._drafts.get(conversation_id, "") == text:
            return
        if text.strip():
            self._drafts[conversation_id] = text
        else:
            self._drafts.pop(conversation_id, None)
        self.dirty = True

    def snapshot(self) -> dict[str, Any]:
        """The file's content now (taken on the event loop, written elsewhere)."""
        self.dirty = False
        return {"version": 1, "drafts": dict(self._drafts)}

    def save(self) -> None:
        write_json_atomic(self.path, self.snapshot())


class Preferences:
    """Small settings the agent chooses in the console (theme, context pane)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "console.json"
        self.values = read_json(self.path)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> dict[str, Any]:
        self.values[key] = value
        return dict(self.values)
