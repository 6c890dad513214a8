"""Media on the server's own disk, served by ``GET /media/{key}`` through HMAC-signed links.

Writes are atomic (a temporary file beside the target, flushed, then renamed), so a reader never
sees half a file. Keys are validated and the resolved path must stay under the root, so nothing
escapes it. A link is ``{public_url}/media/{key}?exp=…&name=…&type=…&sig=…``: the signature covers
the key, the expiry, the download name and the content type, so none can be changed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlencode

from max_server import clock
from max_server.storage.base import InvalidKey, ObjectNotFound, StorageError, validate_key

_LINK_CONTEXT = b"max media link v1"


class LinkRefused(Exception):
    """A local media link that was tampered with (``expired`` False) or has expired (True)."""

    def __init__(self, message: str, *, expired: bool) -> None:
        super().__init__(message)
        self.expired = expired


class LocalStorage:
    name = "local"

    def __init__(self, root: Path, public_url: str, secret_key: str) -> None:
        self.root = Path(root).expanduser().resolve()
        self.public_url = public_url.rstrip("/")
        # Downloads land here first: the same disk as the files (no key starts with a dot), not a
        # /tmp that may be memory-backed.
        self.scratch_dir = self.root / ".incoming"
        # A key derived for links only: the server secret itself never signs anything shared.
        self._link_key = hmac.new(secret_key.encode(), _LINK_CONTEXT, hashlib.sha256).digest()

    # Files --------------------------------------------------------------------------------
    def path_for(self, key: str) -> Path:
        """The file for ``key``; raises :class:`InvalidKey` for anything that could leave the root."""
        validate_key(key)
        path = self.root.joinpath(*key.split("/"))
        # Belt and braces: a symlink planted under the root must not lead out of it either.
        if not path.resolve().is_relative_to(self.root):
            raise InvalidKey(f"storage key {key!r} leads outside the storage root")
        return path

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        target = self.path_for(key)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            for attempt in range(3):  # a concurrent cleanup may remove an emptied directory
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with open(path, "rb") as source, open(temporary, "xb") as out:
                        shutil.copyfileobj(source, out, 1024 * 1024)
                        out.flush()
                        os.fsync(out.fileno())
                    break
                except FileNotFoundError:
                    if attempt == 2 or not Path(path).exists():
                        raise
            os.replace(temporary, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            raise StorageError(f"cannot store {key}: {exc.strerror or exc}") from None

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self.path_for(key), "rb")
        except FileNotFoundError:
            raise ObjectNotFound(f"no media stored under {key}") from None
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc.strerror or exc}") from None

    def delete(self, key: str) -> None:
        path = self.path_for(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete {key}: {exc.strerror or exc}") from None
        # Empty message and conversation directories go too (not the root itself).
        parent = path.parent
        while parent != self.root and parent.is_relative_to(self.root):
            try:
                parent.rmdir()
            except OSError:  # not empty, or already gone: stop here
                break
            parent = parent.parent

    def delete_many(self, keys: Iterable[str]) -> dict[str, StorageError]:
        failed: dict[str, StorageError] = {}
        for key in keys:
            try:
                self.delete(key)
            except StorageError as exc:
                failed[key] = exc
        return failed

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def close(self) -> None:
        """Nothing to release (the protocol lets S3 close its connection pool)."""

    # Links --------------------------------------------------------------------------------
    def signed_url(self, key: str, expires_in_s: int, filename: str, content_type: str) -> str:
        validate_key(key)
        expires = int(clock.now().timestamp()) + max(1, int(expires_in_s))
        query = {"exp": str(expires), "name": filename, "type": content_type}
        query["sig"] = self.signature(key, expires, filename, content_type)
        return f"{self.public_url}/media/{key}?{urlencode(query)}"

    def signature(self, key: str, expires: int, filename: str, content_type: str) -> str:
        message = "\n".join((key, str(expires), filename, content_type)).encode()
        digest = hmac.new(self._link_key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def verify(
        self, key: str, expires: str | None, filename: str, content_type: str, sig: str | None
    ) -> None:
        """Raises :class:`LinkRefused` unless the link is intact and not expired."""
        if not expires or not sig or not expires.isdecimal():
            raise LinkRefused("this media link is incomplete or has been altered", expired=False)
        expected = self.signature(key, int(expires), filename, content_type)
        if not hmac.compare_digest(expected.encode(), sig.encode()):
            raise LinkRefused("this media link is incomplete or has been altered", expired=False)
        if int(expires) <= int(clock.now().timestamp()):
            raise LinkRefused("this media link has expired: ask MAX for a fresh one", expired=True)
