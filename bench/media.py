"""Media download + store: peak memory growth and throughput for a large document.

A customer's 100 MB PDF (``--quick``: 20 MB) goes through the ``media.download`` job exactly as in
production: Graph API lookup and download from the WhatsApp sandbox, streaming into a temporary
file while hashing, the sha256 check, then storage (local disk, then S3 on a moto server). The
sandbox and moto run in child processes, so the bytes they hold do not count against us.

Memory is the process's resident set (RSS) from ``/proc/self/status``: the peak (``VmHWM``, reset
through ``/proc/self/clear_refs`` just before the transfer) minus the RSS right before it, after
a small warm-up transfer has loaded every module and pool. Where the peak cannot be reset, a
thread samples ``VmRSS`` every 2 ms instead. The output says which method was used.

Run: ``python bench/media.py [--quick] [--json]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MiB = 1024 * 1024
_numbers = itertools.count(1)  # conversation numbers (one database per backend)
MEMORY_TARGET_MIB = 32.0
THROUGHPUT_FLOOR_MBPS = 10.0  # a floor that catches a pathological slowdown, not a promise

SANDBOX_CHILD = """
import hashlib, json, os, sys
from max_server.channels.whatsapp.sandbox import Sandbox
sizes = [int(s) for s in sys.argv[1:]]
box = Sandbox("bench-secret").start()
media = []
for size in sizes:
    data = os.urandom(size)
    media.append({"id": box.add_media(data, "application/pdf"), "size": size,
                  "sha256": hashlib.sha256(data).hexdigest()})
    del data
print(json.dumps({"graph_url": box.graph_url, "token": box.access_token,
                  "phone_number_id": box.phone_number_id, "media": media}), flush=True)
sys.stdin.read()
box.stop()
"""

MOTO_CHILD = """
import logging, sys
logging.getLogger("werkzeug").setLevel(logging.WARNING)
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


@contextmanager
def child(code: str, *args: str) -> Iterator[str]:
    """Runs ``code`` in a child Python; yields its first line of output; stops it on exit."""
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(Path(__file__).resolve().parent.parent),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("a helper process failed to start")
        yield line.strip()
    finally:
        if process.stdin:
            process.stdin.close()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


# Memory -----------------------------------------------------------------------------------------
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # resets VmHWM to the current RSS (Linux 4.0+)
    except OSError:
        return False
    return True


def measure(run: Callable[[], None]) -> tuple[float, float, str]:
    """Runs ``run``; returns (peak RSS growth in MiB, seconds, method)."""
    baseline = _status_kib("VmRSS")
    if _reset_peak():
        started = time.perf_counter()
        run()
        seconds = time.perf_counter() - started
        return (_status_kib("VmHWM") - baseline) / 1024, seconds, "VmHWM - VmRSS (/proc, peak reset)"
    peak, stop = [baseline], threading.Event()

    def sample() -> None:
        while not stop.wait(0.002):
            peak[0] = max(peak[0], _status_kib("VmRSS"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    try:
        run()
    finally:
        seconds = time.perf_counter() - started
        stop.set()
        sampler.join()
    return (peak[0] - baseline) / 1024, seconds, "VmRSS sampled every 2 ms (/proc)"


# The code path ----------------------------------------------------------------------------------
def prepare(workdir: Path, backend: str, sandbox: dict[str, Any], moto_url: str | None) -> Any:
    from max_server import migrate
    from max_server.db import Database
    from max_server.settings import load_settings

    storage: dict[str, Any] = {"backend": "local", "path": str(workdir / f"media-{backend}")}
    if backend == "s3":
        import boto3

        keys = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench", "region_name": "us-east-1"}
        boto3.client("s3", endpoint_url=moto_url, **keys).create_bucket(Bucket="bench-media")
        storage = {
            "backend": "s3",
            "bucket": "bench-media",
            "endpoint_url": moto_url,
            "region": "us-east-1",
            "access_key_id": "bench",
            "secret_access_key": "bench",
        }
    settings = load_settings(
        None,
        server={"environment": "test", "secret_key": "bench-secret-key-0123456789"},
        database={"url": f"sqlite:///{workdir / f'bench-{backend}.db'}"},
        storage=storage,
        whatsapp={
            "access_token": sandbox["token"],
            "phone_number_id": sandbox["phone_number_id"],
            "graph_url": sandbox["graph_url"],
            "timeout": 60,
        },
    )
    db = Database(settings.database_url)
    migrate.upgrade(db)
    return settings, db


def media_row(db: Any, phone_number_id: str, media: dict[str, Any]) -> int:
    from sqlmodel import select

    from max_server import clock
    from max_server.models import ChannelAccount, Conversation, Customer, MediaFile, Message

    now = clock.now()
    with db.session() as session:
        account = session.exec(
            select(ChannelAccount).where(ChannelAccount.external_id == phone_number_id)
        ).first()
        account = account or ChannelAccount(kind="whatsapp", external_id=phone_number_id, name="bench")
        customer = Customer(name="Bench")
        session.add_all([account, customer])
        session.flush()
        assert account.id is not None
        assert customer.id is not None
        conversation = Conversation(
            number=next(_numbers),
            customer_id=customer.id,
            channel_account_id=account.id,
            status="queued",
            first_message_at=now,
        )
        session.add(conversation)
        session.flush()
        assert conversation.id is not None
        message = Message(
            conversation_id=conversation.id,
            direction="inbound",
            sender_type="customer",
            channel="whatsapp",
            channel_message_id=f"wamid.bench.{media['id']}",
            type="document",
            received_at=now,
        )
        session.add(message)
        session.flush()
        assert message.id is not None
        row = MediaFile(
            message_id=message.id,
            conversation_id=conversation.id,
            channel_media_id=media["id"],
            media_type="document",
            mime_type="application/pdf",
            filename="informe-anual.pdf",
        )
        session.add(row)
        session.commit()
        return int(row.id)  # type: ignore[arg-type]


def download(settings: Any, db: Any, media_id: int) -> None:
    from max_server.handlers import media as handlers
    from max_server.jobs.registry import JobContext

    context = JobContext(
        db=db,
        settings=settings,
        job_id=0,
        kind="media.download",
        attempt=1,
        max_attempts=10,
        worker_id="bench",
    )
    handlers.download(context, {"media_id": media_id})


def check(db: Any, media_id: int, expected: dict[str, Any]) -> None:
    from max_server.models import MediaFile

    with db.session(write=False) as session:
        row = session.get(MediaFile, media_id)
    if (
        row is None
        or row.status != "stored"
        or row.sha256 != expected["sha256"]
        or row.size != expected["size"]
    ):
        raise SystemExit(f"the benchmark's media was not stored intact: {row and (row.status, row.reason)}")


def run(size: int) -> list[dict[str, Any]]:
    from max_server import httpclients

    figures: list[dict[str, Any]] = []
    label = f"{size // MiB} MB document"
    with child(SANDBOX_CHILD, str(MiB), str(size)) as line, child(MOTO_CHILD) as moto_port:
        sandbox = json.loads(line)
        warmup, big = sandbox["media"]
        moto_url = f"http://127.0.0.1:{moto_port}"
        with tempfile.TemporaryDirectory(prefix="max-bench-media-") as tmp:
            for backend in ("local", "s3"):
                settings, db = prepare(Path(tmp), backend, sandbox, moto_url)
                first = media_row(db, sandbox["phone_number_id"], warmup)
                download(settings, db, first)  # loads modules, pools and threads
                check(db, first, warmup)
                second = media_row(db, sandbox["phone_number_id"], {**big, "size": big["size"]})
                growth, seconds, method = measure(lambda: download(settings, db, second))  # noqa: B023
                check(db, second, big)
                throughput = size / MiB / seconds
                figures += [
                    {
                        "figure": f"media {backend}: peak memory growth, {label}",
                        "target": f"<= {MEMORY_TARGET_MIB:g}",
                        "measured": round(growth, 1),
                        "unit": "MiB",
                        "pass": growth <= MEMORY_TARGET_MIB,
                        "method": method,
                    },
                    {
                        "figure": f"media {backend}: download + store throughput, {label}",
                        "target": f">= {THROUGHPUT_FLOOR_MBPS:g}",
                        "measured": round(throughput, 1),
                        "unit": "MiB/s",
                        "pass": throughput >= THROUGHPUT_FLOOR_MBPS,
                    },
                ]
                httpclients.close_all()
                db.dispose()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 20 MB document instead of 100 MB")
    parser.add_argument("--json", action="store_true", help="print a JSON list of figures")
    args = parser.parse_args()
    figures = run((20 if args.quick else 100) * MiB)
    if args.json:
        print(
            json.dumps([{k: f[k] for k in ("figure", "target", "measured", "unit", "pass")} for f in figures])
        )
    else:
        width = max(len(f["figure"]) for f in figures)
        print(f"{'figure'.ljust(width)}  {'target':>8}  {'measured':>9}  unit    pass")
        for f in figures:
            print(
                f"{f['figure'].ljust(width)}  {f['target']:>8}  {f['measured']:>9}  {f['unit']:<6}  "
                f"{'yes' if f['pass'] else 'NO'}"
            )
        methods = sorted({f["method"] for f in figures if "method" in f})
        print(f"memory: {'; '.join(methods)}")
    return 0 if all(f["pass"] for f in figures) else 1


if __name__ == "__main__":
    raise SystemExit(main())
