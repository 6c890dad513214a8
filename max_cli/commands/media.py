"""``max media``: a media file's metadata and a fresh link, downloads, and retention cleanup."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

import typer

from max_cli.output import EXIT_FAILURE, EXIT_USAGE, Cli, CliError, command

app = typer.Typer(help="Media files: show with a fresh link, download, clean up.", no_args_is_help=True)
MediaArg = Annotated[str, typer.Argument(help="Media id (see a message's media lines).")]
TtlOption = Annotated[
    str | None, typer.Option("--ttl", help="How long the link should work, e.g. 10m (server default 1h).")
]
FIELDS = (
    "id",
    "media_type",
    "mime_type",
    "filename",
    "size",
    "status",
    "reason",
    "sha256",
    "message_id",
    "conversation_id",
    "stored_at",
    "retained_until",
    "url",
    "expires_at",
)


def _link(cli: Cli, media_id: str, ttl: str | None) -> dict[str, Any]:
    return dict(cli.client().get(f"/api/v1/media/{media_id}", ttl=ttl))


@command(app, "show")
def show(cli: Cli, media_id: MediaArg, ttl: TtlOption = None) -> None:
    """Show a media file's metadata and a freshly signed link to it.

    Pending, failed and expired media end with exit code 1 and say why.

    Example: max media show 42 --json
    """
    media = _link(cli, media_id, ttl)
    cli.emit(media, lambda: cli.fields([(k.replace("_", " "), media.get(k)) for k in FIELDS]))


@command(app, "get")
def get(
    cli: Cli,
    media_id: MediaArg,
    output: Annotated[
        str | None,
        typer.Option("-o", "--output", help="Where to write it (`-` for stdout); default: its name, here."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Download a media file through a fresh link and check its sha256.

    Example: max media get 42 -o factura.pdf
    """
    media = _link(cli, media_id, None)
    if output == "-":
        digest, size = _download(cli, media["url"], sys.stdout.buffer)
        sys.stdout.buffer.flush()
        _check_digest(media, digest)
        return
    target = Path(output) if output else Path(_name_from(media))
    if target.exists() and not force:
        raise CliError(f"{target} exists: pass --force to overwrite it", exit_code=EXIT_USAGE, code="exists")
    directory = target.resolve().parent
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            digest, size = _download(cli, media["url"], out)
        _check_digest(media, digest)
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    result = {"id": media["id"], "path": str(target), "size": size, "sha256": digest}
    cli.emit(result, lambda: cli.line(f"Saved {target} ({size} bytes, sha256 verified)."))


def _name_from(media: dict[str, Any]) -> str:
    # The link's last path segment is the stored key's safe name (a name, never a path).
    name = Path(unquote(urlsplit(str(media["url"])).path)).name
    return name if name and not name.startswith(".") else f"media-{media['id']}"


def _download(cli: Cli, url: str, out: Any) -> tuple[str, int]:
    import httpx
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    digest, size = hashlib.sha256(), 0
    try:
        with httpx.stream("GET", url, timeout=httpx.Timeout(60.0, connect=10.0)) as response:
            if not response.is_success:
                response.read()
                raise CliError(
                    f"the download link answered HTTP {response.status_code}: {response.text[:200]}",
                    code="download_failed",
                )
            total = int(response.headers.get("content-length") or 0) or None
            with Progress(
                TextColumn("downloading"),
                BarColumn(),
                DownloadColumn(),
                console=cli.err,
                disable=cli.json or not cli.err.is_terminal,
                transient=True,
            ) as progress:
                task = progress.add_task("download", total=total)
                for chunk in response.iter_bytes(256 * 1024):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    progress.advance(task, len(chunk))
    except httpx.HTTPError as exc:
        raise CliError(f"download failed: {type(exc).__name__}: {exc}", code="download_failed") from None
    return digest.hexdigest(), size


def _check_digest(media: dict[str, Any], digest: str) -> None:
    if media.get("sha256") and media["sha256"] != digest:
        raise CliError(
            f"the downloaded file's sha256 {digest} differs from the stored {media['sha256']}",
            exit_code=EXIT_FAILURE,
            code="checksum_mismatch",
        )


@command(app, "cleanup")
def cleanup(
    cli: Cli,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be removed.")] = False,
    batch: Annotated[int, typer.Option(help="Files per request.", min=1, max=1000)] = 200,
) -> None:
    """Delete media past retention now (the server also does it daily), with a progress bar.

    Rows stay, marked expired, so agents see "expired" instead of a broken link. Admins only.

    Example: max media cleanup --dry-run
    """
    client = cli.client()
    if dry_run:
        plan = client.post("/api/v1/media/cleanup", dry_run=True)
        summary = {"dry_run": True, "due": plan["due"], "due_bytes": plan["due_bytes"]}
        cli.emit(
            summary, lambda: cli.line(f"{plan['due']} file(s), {_size(plan['due_bytes'])}, would be removed.")
        )
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    expired = freed = batches = 0
    errors: list[dict[str, Any]] = []
    cursor: str | None = None
    with Progress(
        TextColumn("cleaning up"),
        BarColumn(),
        MofNCompleteColumn(),
        console=cli.err,
        disable=cli.json,
        transient=True,
    ) as progress:
        task = None
        while True:
            step = client.post("/api/v1/media/cleanup", limit=batch, cursor=cursor)
            batches += 1
            if task is None:
                task = progress.add_task("cleanup", total=step["due"])
            expired += step["expired"]
            freed += step["bytes_freed"]
            errors.extend(step["errors"])
            progress.advance(task, step["expired"] + len(step["errors"]))
            cursor = step.get("next_cursor")
            if not cursor:
                break
    summary = {
        "dry_run": False,
        "expired": expired,
        "bytes_freed": freed,
        "errors": errors,
        "batches": batches,
    }

    def human() -> None:
        cli.line(f"Removed {expired} file(s), {_size(freed)} freed.")
        for error in errors:
            cli.line(f"  not deleted: media {error['id']} ({error['storage_key']}): {error['error']}")

    cli.emit(summary, human)
    if errors:
        raise typer.Exit(EXIT_FAILURE)


def _size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
