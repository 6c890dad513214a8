"""Live fan-out: 200 websocket clients; a message ingested → every client has its event.
Target: p99 ≤ 100 ms at 200 messages/s.

A MAX server (PostgreSQL, ``--processes`` worker processes, 2 by default, so events cross
processes through LISTEN/NOTIFY) runs as a child; the clients are asyncio websockets in this
process, all admins (they may see everything), spread over the processes by the shared port; the
messages are signed WhatsApp webhooks sent open-loop at a fixed rate by a second child process
(each leaves at its scheduled time over a pool of connections), each carrying its send time in
its text. Two latencies per client and message: **ingest → client**, from the moment the webhook
was sent to the moment the client got its ``message.created`` event (the figure with the
target), and **fan-out only**, from the event's ``created_at`` (its insert, inside the ingest
transaction) to the client, which isolates the stream from the cost of ingest. Every message the
server acknowledged must reach every client. A second run at ``--within-rate`` (50 msg/s by
default, none with ``--quick``; a rate a 2-core machine's ingest sustains) shows the fan-out's own cost when ingest
keeps up.

Run: ``python bench/fanout.py [--quick] [--json] [--clients N] [--rate R] [--within-rate R]
[--seconds S] [--processes N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from common import Figure, cpu_seconds, fresh_database, percentile, report
from ingest import PHONE, SECRET, free_port, max_server, wait_healthy

TARGET_MS = 100.0

SENDER = """
import asyncio, sys, time, httpx
sys.path.insert(0, {root!r})
from max_server.channels.whatsapp import payloads as p
url, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
total = int(rate * seconds)


async def main() -> None:
    # Open loop: each webhook leaves at its scheduled time whatever the server's speed, over a
    # pool of connections, so a slow server shows as latency rather than as a lower rate.
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        start = time.time() + 0.5

        async def send(n: int) -> int:
            await asyncio.sleep(max(0.0, start + n / rate - time.time()))
            body = p.encode(p.text_webhook({phone!r}, f"52155{{n % 5000:08d}}", f"wamid.F{{n}}", f"t={{time.time():.6f}}"))
            headers = {{"X-Hub-Signature-256": p.sign(body, {secret!r})}}
            for attempt in range(3):
                # As Meta does: a connection lost before the answer (a keep-alive connection the
                # server closed as it was reused) is sent again; the message id dedupes it.
                try:
                    answer = await client.post(url + "/webhooks/whatsapp", content=body, headers=headers)
                    return answer.status_code
                except httpx.TransportError as exc:
                    print(f"attempt {{attempt + 1}} of message {{n}}: {{type(exc).__name__}}", file=sys.stderr)
            return 0

        codes = await asyncio.gather(*(send(n) for n in range(total)))
    print(sum(1 for code in codes if code == 200), flush=True)


asyncio.run(main())
"""


async def listen(
    url: str,
    token: str,
    count: int,
    connected_all: asyncio.Future[None],
    ingest_ms: list[float],
    fanout_ms: list[float],
) -> None:
    """``count`` websocket clients; each appends its latencies until cancelled."""
    from websockets.asyncio.client import connect

    ready = asyncio.Event()
    connected = 0

    async def one() -> None:
        nonlocal connected
        async with connect(
            url.replace("http", "ws") + "/api/v1/events",
            additional_headers={"Authorization": f"Bearer {token}"},
            max_size=2**24,
        ) as socket:
            async for raw in socket:
                frame = json.loads(raw)
                if frame.get("control") == "ready":
                    connected += 1
                    if connected == count:
                        ready.set()
                    continue
                if frame.get("type") == "message.created":
                    text = frame["data"].get("content_text") or ""
                    if text.startswith("t="):
                        arrived = time.time()
                        ingest_ms.append((arrived - float(text[2:])) * 1000)
                        created = datetime.fromisoformat(frame["created_at"]).timestamp()
                        fanout_ms.append((arrived - created) * 1000)

    tasks = [asyncio.create_task(one()) for _ in range(count)]
    try:
        await asyncio.wait_for(ready.wait(), 60)
        connected_all.set_result(None)
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def drive(
    url: str, token: str, count: int, rate: float, seconds: float
) -> tuple[list[float], list[float], int]:
    """Connects the clients, sends the load, waits for what was acknowledged to arrive."""
    ingest_ms: list[float] = []
    fanout_ms: list[float] = []
    connected_all: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    listening = asyncio.create_task(listen(url, token, count, connected_all, ingest_ms, fanout_ms))
    await asyncio.wait_for(asyncio.shield(connected_all), 90)
    root = str(Path(__file__).resolve().parent.parent)
    sender = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SENDER.format(root=root, phone=PHONE, secret=SECRET),
        url,
        str(rate),
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await sender.communicate()
    accepted = int(out.decode().strip() or 0)
    # Everything acknowledged must reach every client; stragglers get 10 s.
    deadline = time.monotonic() + 10
    while len(ingest_ms) < count * accepted and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    listening.cancel()
    await asyncio.gather(listening, return_exceptions=True)
    return ingest_ms, fanout_ms, accepted


def admin_token(env: dict[str, str]) -> str:
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "max_cli",
            "users",
            "create",
            "Bench",
            "--email",
            "b@bench.example",
            "--role",
            "admin",
            "--json",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return str(json.loads(made.stdout)["token"])


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(args: argparse.Namespace, count: int, seconds: float, rate: float, gated: bool) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="max-fanout-") as tmp, fresh_database() as db_url:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command, env = max_server(db_url, Path(tmp), args.processes, port)
        subprocess.run(
            [sys.executable, "-m", "max_cli", "db", "upgrade"], env=env, check=True, capture_output=True
        )
        token = admin_token(env)
        server = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            wait_healthy(url, server)
            before = cpu_seconds(server.pid), _own_cpu()
            ingest_ms, fanout_ms, accepted = asyncio.run(drive(url, token, count, rate, seconds))
            server_cpu, client_cpu = cpu_seconds(server.pid) - before[0], _own_cpu() - before[1]
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(20)
    offered = int(rate * seconds)
    frames = max(1, len(ingest_ms))
    delivered = len(ingest_ms) / (count * accepted) if accepted else 0.0
    p99 = percentile(ingest_ms, 99) if ingest_ms else float("inf")
    label = f"fan-out: {count} clients, {args.processes} processes, {rate:.0f} msg/s"
    return [
        Figure(
            f"{label}: p99 ingest → client",
            f"<= {TARGET_MS:.0f} ms" if gated else "(reported)",
            p99,
            "ms",
            p99 <= TARGET_MS if gated else True,
        ),
        Figure("  same, p50", "(reported)", percentile(ingest_ms, 50) if ingest_ms else 0, "ms", True),
        Figure(
            "  fan-out only (event insert → client) p99",
            "(reported)",
            percentile(fanout_ms, 99) if fanout_ms else 0,
            "ms",
            True,
        ),
        Figure("  acknowledged / offered", "1.0", accepted / max(1, offered), "x", accepted == offered),
        Figure("  events delivered / acknowledged × clients", "1.0", delivered, "x", delivered >= 1.0),
        # Where the limit is: every frame costs the server a send and this process a receive and
        # a parse, on the same cores (a frame is one event to one client).
        Figure(
            f"  CPU per frame: server (ingest included) / these {count} clients",
            "(reported)",
            server_cpu * 1e6 / frames,
            f"µs / {client_cpu * 1e6 / frames:.0f} µs ({frames / seconds:.0f} frames/s offered)",
            True,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--clients", type=int, default=0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument(
        "--within-rate",
        type=float,
        default=None,
        help="a second run at a rate this machine's ingest sustains (50; --quick: none; 0: skip)",
    )
    parser.add_argument("--seconds", type=float, default=0)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    count = args.clients or (50 if args.quick else 200)
    seconds = args.seconds or (5 if args.quick else 15)
    figures = measure(args, count, seconds, args.rate, gated=True)
    if args.within_rate is None:
        args.within_rate = 0.0 if args.quick else 50.0
    if args.within_rate:
        # The target's rate overloads a small machine's ingest (see bench/ingest.py): this run says
        # what the fan-out itself costs when ingest keeps up.
        figures += measure(args, count, seconds, args.within_rate, gated=False)
    report(figures, args.json)


if __name__ == "__main__":
    main()
