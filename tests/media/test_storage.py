"""The storage backends on their own: keys, names, atomic local files, S3 against moto over HTTP,
and the download rules (limits, MIME types, announced checksums)."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from max_server.storage import InvalidKey, ObjectNotFound, StorageError, get_storage, rules, validate_key
from max_server.storage.base import content_disposition, safe_filename
from max_server.storage.local import LinkRefused, LocalStorage
from max_server.storage.s3 import S3Storage
from tests.media.conftest import S3_KEYS


@pytest.mark.parametrize(
    "key",
    [
        "",
        "../etc/passwd",
        "media/../../x",
        "/abs/path",
        "media//x",
        "media/./x",
        "media/.hidden",
        "media/a\\b",
        "media/a\x00b",
        "media/a b",
        "media/x/",
        "media/" + "a" * 600,
    ],
)
def test_keys_that_could_escape_or_mislead_are_refused(key: str) -> None:
    with pytest.raises(InvalidKey):
        validate_key(key)


def test_a_symlink_under_the_root_cannot_lead_out_of_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (root / "media").symlink_to(outside)
    storage = LocalStorage(root, "http://x", "k" * 20)
    with pytest.raises(InvalidKey):
        storage.path_for("media/secret.txt")
    with pytest.raises(InvalidKey):
        storage.open("media/secret.txt")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system.ini", "system.ini"),
        ("Factura marzo.pdf", "Factura_marzo.pdf"),
        ("Reçu été.pdf", "Recu_ete.pdf"),
        ("a\r\nb\x00c.pdf", "abc.pdf"),
        (".bashrc", "bashrc"),
        ("...", "document.pdf"),
        ("файл", "document.pdf"),
        (None, "document.pdf"),
        ("x" * 300 + ".pdf", "x" * 116 + ".pdf"),
    ],
)
def test_safe_filenames(given: str | None, expected: str) -> None:
    assert safe_filename(given, "document", "application/pdf") == expected


def test_made_up_names_take_the_extension_of_their_type() -> None:
    assert safe_filename(None, "image", "image/jpeg") == "image.jpg"
    assert safe_filename(None, "audio", "audio/ogg; codecs=opus") == "audio.ogg"
    assert safe_filename(None, "video", None) == "video.bin"


def test_content_disposition_is_ascii_safe_with_the_exact_name_encoded() -> None:
    assert content_disposition("Reçu été.pdf") == (
        "attachment; filename=\"Recu ete.pdf\"; filename*=UTF-8''Re%C3%A7u%20%C3%A9t%C3%A9.pdf"
    )
    assert content_disposition('a"b;c%d.txt') == (
        "attachment; filename=\"a_b_c_d.txt\"; filename*=UTF-8''a%22b%3Bc%25d.txt"
    )
    assert (
        content_disposition("C:\\Users\\ana\\x.txt")
        == "attachment; filename=\"x.txt\"; filename*=UTF-8''x.txt"
    )
    header = content_disposition("x\r\nSet-Cookie: a=b")
    assert "\r" not in header and "\n" not in header
    assert (
        content_disposition("../../etc/passwd") == "attachment; filename=\"passwd\"; filename*=UTF-8''passwd"
    )
    assert content_disposition("файл.pdf").startswith('attachment; filename=".pdf"')


def test_local_writes_are_atomic_and_deletes_tidy_up(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root", "http://x", "k" * 20)
    source = tmp_path / "source.bin"
    source.write_bytes(b"first")
    storage.put_file("media/1/2/a.bin", source, "application/octet-stream")
    source.write_bytes(b"second version")
    storage.put_file("media/1/2/a.bin", source, "application/octet-stream")
    with storage.open("media/1/2/a.bin") as stream:
        assert stream.read() == b"second version"
    assert sorted(p.name for p in (tmp_path / "root/media/1/2").iterdir()) == ["a.bin"]  # no temp left
    assert storage.exists("media/1/2/a.bin")
    storage.delete("media/1/2/a.bin")
    storage.delete("media/1/2/a.bin")  # idempotent
    assert not storage.exists("media/1/2/a.bin")
    assert list((tmp_path / "root").iterdir()) == []  # emptied directories removed, the root kept
    with pytest.raises(ObjectNotFound):
        storage.open("media/1/2/a.bin")
    with pytest.raises(StorageError):
        storage.put_file("media/1/2/b.bin", tmp_path / "missing.bin", "application/octet-stream")


def test_local_links_are_signed_over_every_part(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from max_server import clock as clock_module
    from max_server.clock import FrozenClock

    frozen = FrozenClock(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    previous = clock_module.use_clock(frozen)
    try:
        storage = LocalStorage(tmp_path, "https://max.example.com/", "k" * 20)
        url = storage.signed_url("media/1/2/a.pdf", 60, "a.pdf", "application/pdf")
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc, parts.path) == (
            "https",
            "max.example.com",
            "/media/media/1/2/a.pdf",
        )
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        storage.verify("media/1/2/a.pdf", q["exp"], q["name"], q["type"], q["sig"])
        tampered = [
            ("media/1/2/b.pdf", q["exp"], q["name"], q["type"], q["sig"]),
            ("media/1/2/a.pdf", str(int(q["exp"]) + 3600), q["name"], q["type"], q["sig"]),
            ("media/1/2/a.pdf", q["exp"], "evil.html", q["type"], q["sig"]),
            ("media/1/2/a.pdf", q["exp"], q["name"], "text/html", q["sig"]),
            ("media/1/2/a.pdf", q["exp"], q["name"], q["type"], q["sig"][:-1] + "A"),
            ("media/1/2/a.pdf", None, q["name"], q["type"], q["sig"]),
            ("media/1/2/a.pdf", q["exp"], q["name"], q["type"], None),
        ]
        for args in tampered:
            with pytest.raises(LinkRefused) as refused:
                storage.verify(*args)
            assert not refused.value.expired, args
        other = LocalStorage(tmp_path, "https://max.example.com", "another-secret-key")
        with pytest.raises(LinkRefused):
            other.verify("media/1/2/a.pdf", q["exp"], q["name"], q["type"], q["sig"])
        frozen.advance(seconds=61)
        with pytest.raises(LinkRefused) as expired:
            storage.verify("media/1/2/a.pdf", q["exp"], q["name"], q["type"], q["sig"])
        assert expired.value.expired
    finally:
        clock_module.use_clock(previous)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"unit-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def test_s3_backend_against_a_real_endpoint(moto_url: str, bucket: str, tmp_path: Path, s3: Any) -> None:
    storage = S3Storage(bucket, endpoint_url=moto_url, **S3_KEYS)
    data = os.urandom(20 * 1024 * 1024 + 123)  # over the multipart threshold: three parts
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    storage.put_file("media/9/8/big.bin", source, "application/pdf")
    head = s3.head_object(Bucket=bucket, Key="media/9/8/big.bin")
    assert head["ContentLength"] == len(data)
    assert head["ContentType"] == "application/pdf"
    assert storage.exists("media/9/8/big.bin")
    with storage.open("media/9/8/big.bin") as stream:
        assert hashlib.sha256(stream.read()).digest() == hashlib.sha256(data).digest()
    url = storage.signed_url("media/9/8/big.bin", 300, "Reçu.pdf", "application/pdf")
    fetched = httpx.get(url)
    assert fetched.status_code == 200
    assert fetched.content == data
    assert fetched.headers["content-disposition"] == content_disposition("Reçu.pdf")
    assert fetched.headers["content-type"] == "application/pdf"
    small = tmp_path / "small.bin"
    small.write_bytes(b"x")
    storage.put_file("media/9/8/small.bin", small, "text/plain")
    failed = storage.delete_many(["media/9/8/big.bin", "media/9/8/small.bin", "media/9/8/never.bin", "../x"])
    assert list(failed) == ["../x"] and isinstance(failed["../x"], InvalidKey)
    assert not storage.exists("media/9/8/big.bin")
    storage.delete("media/9/8/big.bin")  # idempotent
    with pytest.raises(ObjectNotFound):
        storage.open("media/9/8/big.bin")
    storage.close()


def test_s3_failures_become_storage_errors(moto_url: str, tmp_path: Path) -> None:
    storage = S3Storage("no-such-bucket-here", endpoint_url=moto_url, **S3_KEYS)
    source = tmp_path / "a.bin"
    source.write_bytes(b"a")
    with pytest.raises(StorageError, match="no-such-bucket-here"):
        storage.put_file("media/1/1/a.bin", source, "application/octet-stream")
    with pytest.raises(StorageError):
        S3Storage("")


def test_get_storage_is_one_instance_per_process_and_configuration(settings: Any) -> None:
    assert get_storage(settings) is get_storage(settings)
    assert isinstance(get_storage(settings), LocalStorage)


@pytest.mark.parametrize(
    ("media_type", "mime", "refused"),
    [
        ("image", "image/jpeg", False),
        ("image", "image/svg+xml", True),
        ("image", "application/pdf", True),
        ("sticker", "image/webp", False),
        ("sticker", "image/png", True),
        ("audio", "audio/ogg; codecs=opus", False),
        ("audio", "video/mp4", True),
        ("video", "video/3gpp", False),
        ("document", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", False),
        ("document", "application/zip", False),
        ("document", None, False),
        ("document", "application/x-msdownload", True),
        ("document", "not a mime", True),
        ("image", None, True),
    ],
)
def test_mime_rules(media_type: str, mime: str | None, refused: bool) -> None:
    assert (rules.mime_refusal(media_type, mime) is not None) is refused


def test_size_limits_are_whatsapps() -> None:
    mb = 1024 * 1024
    for media_type, limit in [
        ("image", 5 * mb),
        ("audio", 16 * mb),
        ("video", 16 * mb),
        ("document", 100 * mb),
    ]:
        assert rules.size_refusal(media_type, limit) is None
        assert rules.size_refusal(media_type, limit + 1) is not None
    assert rules.size_refusal("sticker", 500 * 1024) is None
    assert rules.size_refusal("sticker", 500 * 1024 + 1) is not None
    assert rules.size_refusal("unknown", 100 * mb + 1) is not None


def test_announced_checksums_in_base64_or_hex() -> None:
    digest = hashlib.sha256(b"hola").digest()
    assert rules.announced_digest(base64.b64encode(digest).decode()) == digest
    assert rules.announced_digest(base64.urlsafe_b64encode(digest).decode().rstrip("=")) == digest
    assert rules.announced_digest(digest.hex()) == digest
    assert rules.announced_digest(digest.hex().upper()) == digest
    assert rules.announced_digest("not a checksum") is None
    assert rules.announced_digest(base64.b64encode(b"short").decode()) is None
    assert rules.announced_digest(None) is None
