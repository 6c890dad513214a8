"""Attachments on the agent's machine: save one (through a link minted on each open, never
stored), hand it to the system's opener, or read it for an inline preview.

Downloads stream in chunks to a temporary file beside the target and are renamed when complete
(a cancelled download never leaves half a file under the real name); file writes run in a
thread. The link is fetched without the console's token: it is signed, and S3/R2 must not see
our bearer token. The opener is injectable (tests record what would have been opened).
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import platformdirs

from max_server.schemas import MediaLink

Opener = Callable[[Path], Awaitable[None]]
CHUNK = 256 * 1024
PREVIEW_LIMIT = 8 * 1024 * 1024  # bytes read for an inline preview (WhatsApp images are ≤ 5 MB)
_UNSAFE = re.compile(r"[^\w.\- ()]+")
EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "audio/ogg": ".ogg",
    "audio/mpeg": ".mp3",
    "video/mp4": ".mp4",
    "application/pdf": ".pdf",
}


class MediaFetchError(Exception):
    """The download failed (its reason is the message)."""


def safe_filename(link: MediaLink) -> str:
    """The customer's file name without path parts or odd characters, or ``<type>-<id>.<ext>``."""
    name = Path((link.filename or "").replace("\\", "/")).name
    name = _UNSAFE.sub("_", name).strip(" .")
    if not name:
        name = f"{link.media_type}-{link.id}{EXTENSIONS.get(link.mime_type or '', '')}"
    return name[:150]


def unique_path(directory: Path, name: str) -> Path:
    """``name``, or ``name (2)``, ``name (3)``… when it exists already."""
    candidate = directory / name
    stem, suffix = candidate.stem, candidate.suffix
    counter = 2
    while candidate.exists():
        candidate = directory / f"{stem} ({counter}){suffix}"
        counter += 1
    return candidate


def downloads_dir() -> Path:
    return Path(platformdirs.user_downloads_dir())


async def system_opener(path: Path) -> None:
    """``xdg-open`` on Linux and BSDs, ``open`` on macOS, the file association on Windows."""
    if sys.platform.startswith("win"):
        await asyncio.to_thread(os.startfile, str(path))  # type: ignore[attr-defined,unused-ignore]
        return
    command = "open" if sys.platform == "darwin" else "xdg-open"
    process = await asyncio.create_subprocess_exec(
        command, str(path), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    await process.wait()


class MediaFiles:
    def __init__(
        self,
        cache_dir: Path,
        *,
        save_dir: Path | None = None,
        opener: Opener | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.cache_dir = cache_dir
        self.save_dir = save_dir
        self.opener = opener or system_opener
        self.transport = transport

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport, timeout=60.0, follow_redirects=False)

    async def download(self, link: MediaLink, directory: Path) -> Path:
        """Saves the file in ``directory`` under a free name; returns where."""
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        fd, temporary = await asyncio.to_thread(
            tempfile.mkstemp, prefix=".max-", suffix=".part", dir=directory
        )
        handle = os.fdopen(fd, "wb")
        try:
            async with self._client() as client, client.stream("GET", link.url) as response:
                if response.status_code != 200:
                    raise MediaFetchError(f"the file server answered HTTP {response.status_code}")
                async for chunk in response.aiter_bytes(CHUNK):
                    await asyncio.to_thread(handle.write, chunk)
            await asyncio.to_thread(handle.close)
            target = await asyncio.to_thread(unique_path, directory, safe_filename(link))
            await asyncio.to_thread(os.replace, temporary, target)
            return target
        except httpx.HTTPError as exc:
            raise MediaFetchError(f"the download failed ({type(exc).__name__})") from exc
        finally:
            if not handle.closed:
                handle.close()
            Path(temporary).unlink(missing_ok=True)

    async def save(self, link: MediaLink) -> Path:
        return await self.download(link, self.save_dir or downloads_dir())

    async def open(self, link: MediaLink) -> Path:
        """Downloads into the console's cache and hands the file to the system's opener."""
        path = await self.download(link, self.cache_dir / "media")
        await self.opener(path)
        return path

    async def read(self, link: MediaLink, limit: int = PREVIEW_LIMIT) -> bytes:
        """The file's bytes, for a preview (refused past ``limit``)."""
        chunks: list[bytes] = []
        size = 0
        try:
            async with self._client() as client, client.stream("GET", link.url) as response:
                if response.status_code != 200:
                    raise MediaFetchError(f"the file server answered HTTP {response.status_code}")
                async for chunk in response.aiter_bytes(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise MediaFetchError("too large to preview")
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise MediaFetchError(f"the download failed ({type(exc).__name__})") from exc
        return b"".join(chunks)
