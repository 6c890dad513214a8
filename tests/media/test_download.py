"""Inbound media end to end: the sandbox's webhooks, the ``media.download`` job, storage on local
disk and in S3 (moto over HTTP), and fresh signed links fetched with httpx."""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from max_server.channels.whatsapp import payloads
from max_server.channels.whatsapp.sandbox import RecordedRequest, Sandbox
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs.worker import Worker
from max_server.models import Event, Job
from max_server.settings import Settings
from tests.conftest import People
from tests.media.conftest import Customer, MediaRow, blob, link_for
from tests.support.live import LiveServer

MB = 1024 * 1024


def events_of(db: Database, type_: str) -> list[dict[str, Any]]:
    with db.session(write=False) as session:
        return [
            e.data for e in session.exec(select(Event).where(Event.type == type_).order_by(col(Event.id)))
        ]


def stored_keys(settings: Settings, s3: Any) -> list[str]:
    if settings.storage.backend == "s3":
        listed = s3.list_objects_v2(Bucket=settings.storage.bucket)
        return sorted(o["Key"] for o in listed.get("Contents", []))
    root = Path(settings.storage.path)
    if not root.exists():
        return []
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".incoming" not in p.parts
    )


@pytest.mark.parametrize("storage_backend", ["local", "s3"])
def test_each_kind_round_trips_byte_for_byte_through_a_fresh_link(
    customer: Customer,
    worker: Worker,
    people: People,
    live: LiveServer,
    db: Database,
    settings: Settings,
    s3: Any,
    clock: FrozenClock,
    row: MediaRow,
) -> None:
    _, admin = people.user("admin")
    files: dict[str, tuple[bytes, str, dict[str, Any]]] = {
        "image": (blob(300_000, "img"), "image/jpeg", {}),
        "audio": (blob(80_000, "aud"), "audio/ogg; codecs=opus", {"voice": True}),
        "video": (blob(2 * MB, "vid"), "video/mp4", {"caption": "mira"}),
        "document": (blob(700_000, "doc"), "application/pdf", {"filename": "Factura marzo.pdf"}),
    }
    sent = {
        kind: customer.sends(data, mime, kind=kind, **opts)[0] for kind, (data, mime, opts) in files.items()
    }
    assert {kind: row(i).status for kind, i in sent.items()} == dict.fromkeys(files, "pending")
    assert worker.drain() == 4

    for kind, media_id in sent.items():
        data, mime, _ = files[kind]
        stored = row(media_id)
        assert stored.status == "stored", (kind, stored.reason)
        assert stored.size == len(data)
        assert stored.sha256 == hashlib.sha256(data).hexdigest()
        assert stored.storage_key is not None
        assert stored.storage_key.startswith(f"media/{stored.conversation_id}/{stored.message_id}/")
        assert stored.stored_at == clock.now()
        assert stored.expires_at == clock.now() + timedelta(days=7)

        answer = link_for(live, admin, media_id)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["status"] == "stored" and body["sha256"] == stored.sha256
        assert body["expires_at"] == (clock.now() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
        fetched = httpx.get(body["url"])
        assert fetched.status_code == 200, fetched.text
        assert fetched.content == data
        assert fetched.headers["content-type"].split(";")[0] == mime.split(";")[0]
        assert fetched.headers["content-disposition"].startswith("attachment;")
    assert stored_keys(settings, s3) == sorted(row(i).storage_key for i in sent.values())  # type: ignore[type-var]
    document = link_for(live, admin, sent["document"]).json()
    assert row(sent["document"]).storage_key.endswith("/Factura_marzo.pdf")  # type: ignore[union-attr]
    disposition = httpx.get(document["url"]).headers["content-disposition"]
    assert 'filename="Factura marzo.pdf"' in disposition
    assert "filename*=UTF-8''Factura%20marzo.pdf" in disposition
    # The link is never stored: asking again mints another one.
    assert (
        link_for(live, admin, sent["image"], ttl="5m").json()["url"]
        != link_for(live, admin, sent["image"]).json()["url"]
    )
    announced = events_of(db, "media.stored")
    assert sorted(e["id"] for e in announced) == sorted(str(i) for i in sent.values())
    assert all("url" not in e for e in announced)


def test_a_wrong_sha256_fails_and_stores_nothing(
    customer: Customer,
    sandbox: Sandbox,
    worker: Worker,
    people: People,
    live: LiveServer,
    db: Database,
    settings: Settings,
    row: MediaRow,
) -> None:
    data = blob(10_000, "sha")
    media_id = sandbox.add_media(data, "image/jpeg")
    wrong = payloads.sha256_b64(b"something else")
    ours = customer.sends_raw("image", media_id, "image/jpeg", wrong)
    worker.drain()
    failed = row(ours)
    assert failed.status == "failed"
    assert failed.reason is not None and failed.reason.startswith("checksum mismatch")
    assert wrong in failed.reason
    assert stored_keys(settings, None) == []
    assert not list((Path(settings.storage.path) / ".incoming").glob("*"))  # no temporary file left
    _, admin = people.user("admin")
    answer = link_for(live, admin, ours)
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "media_failed"
    assert "checksum mismatch" in answer.json()["error"]["message"]
    assert [e["id"] for e in events_of(db, "media.failed")] == [str(ours)]


def test_a_hex_sha256_is_accepted_too(
    customer: Customer, sandbox: Sandbox, worker: Worker, row: MediaRow
) -> None:
    data = blob(10_000, "hex")
    media_id = sandbox.add_media(data, "image/png")
    ours = customer.sends_raw("image", media_id, "image/png", hashlib.sha256(data).hexdigest())
    worker.drain()
    assert row(ours).status == "stored"


def test_an_oversize_image_is_refused_without_downloading_it(
    customer: Customer, sandbox: Sandbox, worker: Worker, row: MediaRow
) -> None:
    ours, _ = customer.sends(blob(5 * MB + 1, "big"), "image/jpeg")
    worker.drain()
    refused = row(ours)
    assert refused.status == "failed"
    assert refused.reason == "too large: 5,242,881 bytes, over WhatsApp's 5 MB limit for an image"
    assert not [r for r in sandbox.requests if "attachments" in r.path]


def test_a_sticker_over_500_kb_and_an_unexpected_type_are_refused(
    customer: Customer, worker: Worker, row: MediaRow
) -> None:
    sticker, _ = customer.sends(blob(500 * 1024 + 1, "st"), "image/webp", kind="sticker")
    program, _ = customer.sends(blob(1000, "exe"), "application/x-msdownload", filename="setup.exe")
    fake_image, _ = customer.sends(blob(1000, "pdf"), "application/pdf", kind="image")
    worker.drain()
    assert row(sticker).reason == "too large: 512,001 bytes, over WhatsApp's 500 KB limit for a sticker"
    assert row(program).reason == "unexpected MIME type application/x-msdownload for a document"
    assert row(fake_image).reason == "unexpected MIME type application/pdf for an image"
    assert {row(i).status for i in (sticker, program, fake_image)} == {"failed"}


def test_an_expired_url_404_is_retried_with_a_fresh_url(
    customer: Customer, sandbox: Sandbox, worker: Worker, clock: FrozenClock, row: MediaRow
) -> None:
    downloads: list[RecordedRequest] = []

    def expire_first_url(request: RecordedRequest) -> None:
        if "attachments" in request.path:
            downloads.append(request)
            if len(downloads) == 1:
                sandbox.expire_media_urls()  # Meta's URL died before we used it

    sandbox.on_request = expire_first_url
    data = blob(50_000, "404")
    ours, _ = customer.sends(data, "image/jpeg")
    worker.drain()
    waiting = row(ours)
    assert waiting.status == "pending"
    assert waiting.reason is not None and "HTTP 404" in waiting.reason and "fresh one" in waiting.reason
    clock.advance(seconds=10)
    worker.drain()
    assert row(ours).status == "stored"
    assert row(ours).reason is None
    lookups = [r for r in sandbox.requests if r.method == "GET" and r.path.startswith("/v23.0/")]
    assert len(lookups) == 2  # a new lookup, hence a new URL, for the second try
    assert downloads[0].query["hash"] != downloads[1].query["hash"]


def test_a_download_failing_twice_then_succeeding_is_stored(
    customer: Customer, sandbox: Sandbox, worker: Worker, clock: FrozenClock, db: Database, row: MediaRow
) -> None:
    data = blob(40_000, "flaky")
    ours, media_id = customer.sends(data, "audio/mpeg", kind="audio")
    sandbox.media_failures(media_id, 2)
    for expected in ("pending", "pending", "stored"):
        worker.drain()
        assert row(ours).status == expected
        clock.advance(seconds=30)
    with db.session(write=False) as session:
        job = session.exec(select(Job).where(Job.kind == "media.download")).one()
    assert (job.state, job.attempts) == ("done", 3)
    assert row(ours).sha256 == hashlib.sha256(data).hexdigest()


def test_the_last_failure_marks_the_media_failed_with_its_reason(
    customer: Customer, sandbox: Sandbox, worker: Worker, clock: FrozenClock, db: Database, row: MediaRow
) -> None:
    ours, media_id = customer.sends(blob(1000, "down"), "video/mp4", kind="video")
    sandbox.media_failures(media_id, 100, status=503)
    for _ in range(10):
        worker.drain()
        clock.advance(hours=1)
    failed = row(ours)
    assert failed.status == "failed"
    assert failed.reason is not None
    assert failed.reason.startswith("WhatsApp answered HTTP 503")
    assert failed.reason.endswith("(gave up after 10 tries)")
    assert [e["reason"] for e in events_of(db, "media.failed")] == [failed.reason]


@pytest.mark.parametrize("storage_backend", ["local", "s3"])
def test_hostile_filenames_get_safe_keys_and_safe_dispositions(
    customer: Customer,
    worker: Worker,
    people: People,
    live: LiveServer,
    settings: Settings,
    s3: Any,
    row: MediaRow,
) -> None:
    _, admin = people.user("admin")
    traversal, _ = customer.sends(blob(2000, "t"), "text/plain", kind="document", filename="../../etc/passwd")
    # (A NUL would fail the webhook on PostgreSQL, which stores no NUL in text: see the report.)
    injected, _ = customer.sends(
        blob(2000, "c"), "application/pdf", kind="document", filename="a\r\nX-Injected: 1\x1b\x07b.pdf"
    )
    accents, _ = customer.sends(blob(2000, "u"), "application/pdf", kind="document", filename="Reçu été.pdf")
    worker.drain()
    keys = {i: row(i).storage_key or "" for i in (traversal, injected, accents)}
    assert keys[traversal].endswith("/passwd")
    assert keys[injected].endswith("/aX-Injected_1b.pdf")
    assert keys[accents].endswith("/Recu_ete.pdf")
    for key in keys.values():
        assert ".." not in key and "\\" not in key and key.count("/") == 3
    if settings.storage.backend == "local":
        root = Path(settings.storage.path).resolve()
        assert all((root / k).resolve().is_relative_to(root) and (root / k).is_file() for k in keys.values())
        assert not (root.parent / "etc").exists()
    dispositions = {}
    for media_id in keys:
        fetched = httpx.get(link_for(live, admin, media_id).json()["url"])
        assert fetched.status_code == 200
        assert "x-injected" not in fetched.headers
        dispositions[media_id] = fetched.headers["content-disposition"]
    assert dispositions[traversal] == "attachment; filename=\"passwd\"; filename*=UTF-8''passwd"
    assert dispositions[injected] == (
        "attachment; filename=\"aX-Injected: 1b.pdf\"; filename*=UTF-8''aX-Injected%3A%201b.pdf"
    )
    assert dispositions[accents] == (
        "attachment; filename=\"Recu ete.pdf\"; filename*=UTF-8''Re%C3%A7u%20%C3%A9t%C3%A9.pdf"
    )


def test_two_attachments_with_the_same_name_get_distinct_keys(
    customer: Customer, worker: Worker, row: MediaRow, files_server: str
) -> None:
    first, second = customer.attaches(
        {"url": files_server + "/files/a", "filename": "foto.jpg", "mime_type": "image/jpeg"},
        {"url": files_server + "/files/b", "filename": "foto.jpg", "mime_type": "image/jpeg"},
    )
    worker.drain()
    one, two = row(first), row(second)
    assert (one.status, two.status) == ("stored", "stored")
    assert one.storage_key != two.storage_key
    # The first file of the message keeps the plain name, whichever finishes first.
    assert one.storage_key.endswith("/foto.jpg")  # type: ignore[union-attr]
    assert two.storage_key.endswith(f"/foto-{two.id}.jpg")  # type: ignore[union-attr]


def test_chat_app_attachments_use_the_same_pipeline_and_limits(
    customer: Customer,
    worker: Worker,
    people: People,
    live: LiveServer,
    row: MediaRow,
    files_server: str,
    clock: FrozenClock,
) -> None:
    _, admin = people.user("admin")
    good, oversize, missing, moved, no_type = customer.attaches(
        {"url": files_server + "/files/a", "filename": "a.pdf", "mime_type": "application/pdf"},
        {"url": files_server + "/chunked/6000000", "mime_type": "image/png"},
        {"url": files_server + "/files/nothing-here", "filename": "x.pdf", "mime_type": "application/pdf"},
        {"url": files_server + "/redirect", "filename": "y.pdf", "mime_type": "application/pdf"},
        {"url": files_server + "/files/b"},
    )
    worker.drain()
    assert row(good).status == "stored"
    assert httpx.get(link_for(live, admin, good).json()["url"]).content == FILES["a"]
    assert row(oversize).status == "failed"
    assert row(oversize).reason == (
        "too large: more than 5,242,880 bytes, over WhatsApp's 5 MB limit for an image"
    )
    assert row(moved).status == "failed"
    assert (
        row(moved).reason == "the attachment server 127.0.0.1 answered HTTP 302 (redirects are not followed)"
    )
    assert row(no_type).status == "stored"  # a document: the server's Content-Type is used
    assert row(no_type).mime_type == "image/jpeg"
    assert row(missing).status == "pending"  # 404 is retried (the file may not be there yet)
    assert "HTTP 404" in (row(missing).reason or "")
    assert "nothing-here" not in (row(missing).reason or "")  # reasons never show the URL


def test_an_attachment_on_a_private_address_is_refused_by_default(
    db: Database,
    tmp_path: Path,
    customer: Customer,
    row: MediaRow,
    files_server: str,
    clock: FrozenClock,
    settings: Settings,
) -> None:
    from max_server.jobs import registry

    strict = settings.model_copy(
        update={"webhooks": settings.webhooks.model_copy(update={"allow_private_networks": False})}
    )
    [media_id] = customer.attaches({"url": files_server + "/files/a", "mime_type": "application/pdf"})
    registry.load_builtin_handlers()
    Worker(db, strict, concurrency=1, now=lambda _: clock.now(), name="strict").drain()
    refused = row(media_id)
    assert refused.status == "failed"
    assert refused.reason is not None and refused.reason.startswith(
        "attachment URL refused: 127.0.0.1 resolves"
    )


FILES = {"a": os.urandom(120_000), "b": os.urandom(9_000)}


@pytest.fixture
def files_server() -> Any:
    """A loopback server for Chat App attachments: plain files, a chunked stream with no length,
    a redirect, and 404s."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
    from starlette.routing import Route

    from max_server.serve import ThreadedServer

    async def files(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in FILES:
            return PlainTextResponse("not found", status_code=404)
        return Response(FILES[name], media_type="image/jpeg")

    async def chunked(request: Request) -> Response:
        size = int(request.path_params["size"])

        async def body() -> Any:
            for start in range(0, size, 64 * 1024):
                yield b"\0" * min(64 * 1024, size - start)

        return StreamingResponse(body(), media_type="image/png")

    async def redirect(request: Request) -> Response:
        return RedirectResponse("/files/a", status_code=302)

    app = Starlette(
        routes=[
            Route("/files/{name}", files),
            Route("/chunked/{size:int}", chunked),
            Route("/redirect", redirect),
        ]
    )
    server = ThreadedServer(app).start()
    yield server.url
    server.stop()


def test_a_file_whose_row_changed_during_the_download_leaves_no_orphan(
    customer: Customer, sandbox: Sandbox, worker: Worker, db: Database, settings: Settings, row: MediaRow
) -> None:
    from max_server.models import MediaFile

    ours: list[int] = []

    def erase_meanwhile(request: RecordedRequest) -> None:
        if "attachments" in request.path:  # as an erasure would, while the bytes are on their way
            with db.session() as session:
                media = session.get(MediaFile, ours[0])
                assert media is not None
                media.status, media.reason = "failed", "erased"
                session.add(media)
                session.commit()

    ours.append(customer.sends(blob(3000, "gone"), "image/jpeg")[0])
    sandbox.on_request = erase_meanwhile
    worker.drain()
    assert (row(ours[0]).status, row(ours[0]).reason) == ("failed", "erased")
    assert stored_keys(settings, None) == []
