"""What every media storage backend offers, and the rules for keys and download names.

A backend stores whole files under keys such as ``media/12/345/factura.pdf`` and mints
time-limited links to them on demand; links are never stored (DESIGN §6). Backends raise
:class:`StorageError` (or a subclass) for every failure, so callers need not know boto3 or OSError.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable
from urllib.parse import quote

MAX_KEY_LENGTH = 512
# A key is segments of letters, digits, dot, dash and underscore, each starting with a letter or
# digit: no "..", no hidden files, no separators other than "/", nothing a shell or URL mangles.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 120
# Extensions for names we make up (WhatsApp images, audio and video come without a filename).
_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "audio/ogg": ".ogg",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/aac": ".aac",
    "audio/amr": ".amr",
    "video/mp4": ".mp4",
    "video/3gpp": ".3gp",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
}


class StorageError(Exception):
    """The storage backend failed (disk, network, permissions, configuration)."""


class InvalidKey(StorageError, ValueError):
    """The key breaks the key rules (it could escape the storage root or be misread)."""


class ObjectNotFound(StorageError):
    """No object under this key."""


@runtime_checkable
class Storage(Protocol):
    """A media store: local disk or an S3-compatible bucket."""

    name: str

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Stores the file at ``path`` under ``key`` (replacing any object there), atomically."""

    def open(self, key: str) -> BinaryIO:
        """A readable binary stream of the object (close it when done)."""
        ...

    def delete(self, key: str) -> None:
        """Deletes the object; deleting a missing object is not an error."""

    def delete_many(self, keys: Iterable[str]) -> dict[str, StorageError]:
        """Deletes every key it can; returns the failures by key (empty: all gone)."""
        ...

    def exists(self, key: str) -> bool: ...

    def signed_url(self, key: str, expires_in_s: int, filename: str, content_type: str) -> str:
        """A link that downloads the object as ``filename`` for ``expires_in_s`` seconds."""
        ...

    def close(self) -> None: ...


def validate_key(key: str) -> str:
    """Returns ``key`` if it follows the key rules; raises :class:`InvalidKey` otherwise."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidKey("a storage key is 1 to 512 characters")
    for segment in key.split("/"):
        if not _SEGMENT.fullmatch(segment):
            raise InvalidKey(f"invalid storage key {key!r}: bad segment {segment!r}")
    return key


def base_mime(mime_type: str | None) -> str | None:
    """``audio/ogg; codecs=opus`` → ``audio/ogg``; None when absent or not a MIME type."""
    if not mime_type:
        return None
    base = mime_type.split(";", 1)[0].strip().lower()
    return base if _MIME.fullmatch(base) else None


def content_type(mime_type: str | None) -> str:
    """The Content-Type to serve: the base MIME type, or ``application/octet-stream``."""
    return base_mime(mime_type) or "application/octet-stream"


def extension_for(mime_type: str | None) -> str:
    base = base_mime(mime_type)
    if base is None:
        return ".bin"
    return _EXTENSIONS.get(base) or mimetypes.guess_extension(base, strict=False) or ".bin"


def display_name(filename: str | None) -> str:
    """The name a person sees: the last path component, without control characters; may be
    non-ASCII, may be empty."""
    text = unicodedata.normalize("NFC", filename or "")
    text = re.split(r"[/\\]", text)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    return _shorten(text.strip().strip(".").strip(), 200)


def _shorten(name: str, limit: int) -> str:
    """``name`` cut to ``limit`` characters, keeping a short extension."""
    if len(name) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    if dot and stem and len(ext) <= 16:
        return stem[: limit - len(ext) - 1].rstrip("._- ") + "." + ext
    return name[:limit]


def safe_filename(filename: str | None, fallback: str, mime_type: str | None) -> str:
    """The last segment of a storage key made from a customer-supplied name.

    ``../../etc/passwd`` → ``passwd``; ``factura ñ.pdf`` → ``factura_n.pdf``; nothing usable →
    ``{fallback}{extension from the MIME type}``.
    """
    name = display_name(filename)
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    name = _shorten(_UNSAFE_NAME.sub("_", name).lstrip("._-").rstrip("._-"), _MAX_NAME).rstrip("._-")
    if not name or not _SEGMENT.fullmatch(name):
        name = _UNSAFE_NAME.sub("_", fallback).strip("._-") or "file"
        name += extension_for(mime_type)
    return name


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII-safe ``filename`` and the exact name as RFC 5987 ``filename*``."""
    name = display_name(filename) or "download"
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    ascii_name = re.sub(r'[^\x20-\x7e]|["\\%;]', "_", ascii_name).strip() or "download"
    encoded = quote(name, safe="!#$&+-.^_`|~")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{encoded}"
