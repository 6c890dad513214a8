"""``max media show|get|cleanup`` against a live server."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from max_server.clock import FrozenClock
from max_server.jobs.worker import Worker
from tests.cli.conftest import Max, home, max_cli  # noqa: F401  (the CLI runner fixtures)
from tests.conftest import People
from tests.media.conftest import Customer, MediaRow, blob
from tests.support.live import LiveServer


@pytest.mark.parametrize("storage_backend", ["local", "s3"])
def test_show_and_get_through_a_fresh_link(
    max_cli: Max,  # noqa: F811
    customer: Customer,
    worker: Worker,
    people: People,
    live: LiveServer,
    tmp_path: Path,
    row: MediaRow,
) -> None:
    _, token = people.user("admin")
    env = {"MAX_URL": live.url, "MAX_TOKEN": token}
    data = blob(400_000, "cli")
    ours, _ = customer.sends(data, "application/pdf", filename="Contrato firmado.pdf")
    worker.drain()
    shown = max_cli.json("media", "show", str(ours), "--ttl", "5m", env=env)
    assert shown["status"] == "stored" and shown["url"] and shown["expires_at"]
    assert shown["sha256"] == hashlib.sha256(data).hexdigest()
    human = max_cli("media", "show", str(ours), env=env)
    assert human.exit_code == 0
    assert "Contrato firmado.pdf" in human.stdout and "retained until" in human.stdout

    target = tmp_path / "out" / "contrato.pdf"
    target.parent.mkdir()
    got = max_cli.json("media", "get", str(ours), "-o", str(target), env=env)
    assert got == {"id": str(ours), "path": str(target), "size": len(data), "sha256": shown["sha256"]}
    assert target.read_bytes() == data
    assert sorted(p.name for p in target.parent.iterdir()) == ["contrato.pdf"]  # no partial file left
    again = max_cli("media", "get", str(ours), "-o", str(target), "--json", env=env)
    assert again.exit_code == 2
    assert json.loads(again.stderr)["error"]["code"] == "exists"
    forced = max_cli("media", "get", str(ours), "-o", str(target), "--force", env=env)
    assert forced.exit_code == 0, forced.stderr
    piped = max_cli("media", "get", str(ours), "-o", "-", env=env)
    assert piped.exit_code == 0, piped.stderr
    assert piped.stdout_bytes == data


def test_missing_pending_and_expired_media_exit_with_their_codes(
    max_cli: Max,  # noqa: F811
    customer: Customer,
    worker: Worker,
    people: People,
    live: LiveServer,
    clock: FrozenClock,
) -> None:
    _, token = people.user("admin")
    env = {"MAX_URL": live.url, "MAX_TOKEN": token}
    assert max_cli("media", "show", "999999", env=env).exit_code == 3
    ours, _ = customer.sends(blob(1000, "p"), "image/jpeg")
    pending = max_cli("media", "show", str(ours), "--json", env=env)
    assert pending.exit_code == 1
    assert json.loads(pending.stderr)["error"]["code"] == "media_pending"
    worker.drain()
    clock.advance(days=7, seconds=1)
    expired = max_cli("media", "get", str(ours), env=env)
    assert expired.exit_code == 1
    assert "has expired" in expired.stderr


def test_cleanup_with_a_dry_run_then_for_real(
    max_cli: Max,  # noqa: F811
    customer: Customer,
    worker: Worker,
    people: People,
    live: LiveServer,
    clock: FrozenClock,
    row: MediaRow,
) -> None:
    _, token = people.user("admin")
    env = {"MAX_URL": live.url, "MAX_TOKEN": token}
    ids = [customer.sends(blob(2048, f"c{i}"), "image/jpeg")[0] for i in range(3)]
    worker.drain()
    clock.advance(days=8)
    dry = max_cli.json("media", "cleanup", "--dry-run", env=env)
    assert dry == {"dry_run": True, "due": 3, "due_bytes": 6144}
    human_dry = max_cli("media", "cleanup", "--dry-run", env=env)
    assert "3 file(s), 6.0 KB, would be removed." in human_dry.stdout
    assert {row(i).status for i in ids} == {"stored"}
    done = max_cli.json("media", "cleanup", "--batch", "2", env=env)
    assert done == {"dry_run": False, "expired": 3, "bytes_freed": 6144, "errors": [], "batches": 2}
    assert {row(i).status for i in ids} == {"expired"}
    human = max_cli("media", "cleanup", env=env)
    assert human.exit_code == 0
    assert "Removed 0 file(s), 0 bytes freed." in human.stdout
