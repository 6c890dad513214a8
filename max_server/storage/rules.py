"""What MAX accepts into media storage: WhatsApp's size limits and the expected MIME types per
kind of media (Chat App attachments get the same), and reading the sha256 a channel announced.

Pure functions: each refusal comes back as the one-line reason agents will see.
"""

from __future__ import annotations

import base64
import binascii
import re

from max_server.storage.base import base_mime

MB = 1024 * 1024
# WhatsApp's own limits per type (reference/whatsapp-cloud-api.md §4); Chat App attachments get
# the same ones. Anything unknown counts as a document.
LIMITS = {"image": 5 * MB, "audio": 16 * MB, "video": 16 * MB, "document": 100 * MB, "sticker": 500 * 1024}
# Documents may be any file a customer sends, except programs.
_EXECUTABLES = frozenset(
    {
        "application/x-msdownload",
        "application/x-dosexec",
        "application/x-msdos-program",
        "application/x-ms-installer",
        "application/x-msi",
        "application/vnd.microsoft.portable-executable",
        "application/x-executable",
        "application/x-sharedlib",
        "application/x-mach-binary",
        "application/x-elf",
        "application/x-sh",
        "application/x-csh",
        "application/x-bat",
        "application/java-archive",
        "application/vnd.android.package-archive",
    }
)
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def limit_for(media_type: str) -> int:
    return LIMITS.get(media_type, LIMITS["document"])


_ARTICLES = {"image": "an image", "audio": "an audio file", "video": "a video", "sticker": "a sticker"}


def kind_phrase(media_type: str) -> str:
    return _ARTICLES.get(media_type, "a document")


def limit_text(limit: int) -> str:
    return f"{limit // MB} MB" if limit % MB == 0 else f"{limit // 1024} KB"


def size_refusal(media_type: str, size: int | None, *, at_least: bool = False) -> str | None:
    """Why a file of ``size`` bytes is refused (``at_least``: the download passed the limit)."""
    limit = limit_for(media_type)
    if size is None or size <= limit:
        return None
    shown = f"more than {limit:,} bytes" if at_least else f"{size:,} bytes"
    return f"too large: {shown}, over WhatsApp's {limit_text(limit)} limit for {kind_phrase(media_type)}"


def mime_refusal(media_type: str, mime_type: str | None) -> str | None:
    """Why this MIME type is unexpected for this kind of media (None: acceptable)."""
    base = base_mime(mime_type)
    if base is None:
        if not mime_type and media_type not in ("image", "sticker", "audio", "video"):
            return None  # a document of unknown type is served as application/octet-stream
        return f"unexpected MIME type {mime_type or '(none)'} for {kind_phrase(media_type)}"
    major = base.split("/", 1)[0]
    allowed = {
        "image": major == "image" and base != "image/svg+xml",
        "sticker": base == "image/webp",
        "audio": major == "audio" or base == "application/ogg",
        "video": major == "video",
    }.get(media_type, base not in _EXECUTABLES)
    return None if allowed else f"unexpected MIME type {base} for {kind_phrase(media_type)}"


def announced_digest(value: str | None) -> bytes | None:
    """The 32-byte digest in a channel's sha256 (base64 as Meta sends it, or hex); None if unreadable."""
    text = (value or "").strip()
    if not text:
        return None
    if _HEX_SHA256.fullmatch(text):
        return bytes.fromhex(text)
    padded = text + "=" * (-len(text) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            raw = decode(padded.encode())
        except (binascii.Error, ValueError):
            continue
        if len(raw) == 32:
            return raw
    return None
