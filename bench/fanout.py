"""Live fan-out: 200 websocket clients; a message ingested → every client has its event.
Target: p99 ≤ 100 ms at 200 messages/s.

A MAX server (PostgreSQL, one process) runs as a child; the clients are asyncio websockets in
this process, all admins (they may see everything); the messages are signed WhatsApp webhooks
sent at a fixed rate by a second child process, each carrying its send time in its text, so the
latency is measured from the moment the webhook was sent to the moment each client got the
``message.created`` event.

Run: ``python bench/fanout.py [--quick] [--json] [--clients N] [--rate R] [--seconds S]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Figure, fresh_database, percentile, report
from ingest import PHONE, SECRET, free_port, max_server, wait_healthy

TARGET_MS = 100.0

SENDER = """
import sys, time, httpx
sys.path.insert(0, {root!r})
from max_server.channels.whatsapp import payloads as p
url, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
client = httpx.Client(timeout=30)
start = time.time() + 1.0
n = 0
while True:
    due = start + n / rate
    if due - start > seconds:
        break
    time.sleep(max(0.0, due - time.time()))
    body = p.encode(p.text_webhook({phone!r}, f"52155{{n % 5000:08d}}", f"wamid.F{{n}}", f"t={{time.time():.6f}}"))
    client.post(url + "/webhooks/whatsapp", content=body, headers={{"X-Hub-Signature-256": p.sign(body, {secret!r})}})
    n += 1
print(n, flush=True)
"""


async def clients(
    url: str, token: str, count: int, expected: int, timeout: float, connected_all: asyncio.Future[None]
) -> list[float]:
    from websockets.asyncio.client import connect

    latencies: list[float] = []
    ready = asyncio.Event()
    connected = 0

    async def one() -> None:
        nonlocal connected
        async with connect(
            url.replace("http", "ws") + "/api/v1/events",
            additional_headers={"Authorization": f"Bearer {token}"},
            max_size=2**24,
        ) as socket:
            got = 0
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
                        latencies.append((time.time() - float(text[2:])) * 1000)
                        got += 1
                        if got >= expected:
                            return

    tasks = [asyncio.create_task(one()) for _ in range(count)]
    await asyncio.wait_for(ready.wait(), 60)
    connected_all.set_result(None)
    await asyncio.wait(tasks, timeout=timeout)
    for task in tasks:
        task.cancel()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--clients", type=int, default=0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=0)
    args = parser.parse_args()
    count = args.clients or (50 if args.quick else 200)
    seconds = args.seconds or (5 if args.quick else 15)
    root = str(Path(__file__).resolve().parent.parent)
    figures = []
    with tempfile.TemporaryDirectory(prefix="max-fanout-") as tmp, fresh_database() as db_url:
        workdir = Path(tmp)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command, env = max_server(db_url, workdir, 1, port)
        subprocess.run(
            [sys.executable, "-m", "max_cli", "db", "upgrade"], env=env, check=True, capture_output=True
        )
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
        token = json.loads(made.stdout)["token"]
        server = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            wait_healthy(url, server)
            expected = int(args.rate * seconds)

            async def run() -> list[float]:
                connected_all: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                listening = asyncio.create_task(
                    clients(url, token, count, expected, seconds + 30, connected_all)
                )
                await connected_all
                sender = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-c",
                    SENDER.format(root=root, phone=PHONE, secret=SECRET),
                    url,
                    str(args.rate),
                    str(seconds),
                    stdout=asyncio.subprocess.PIPE,
                )
                await sender.communicate()
                return await listening

            latencies = asyncio.run(run())
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(20)
    delivered = len(latencies) / max(1, count * int(args.rate * seconds))
    p99 = percentile(latencies, 99) if latencies else float("inf")
    figures.append(
        Figure(
            f"fan-out: {count} clients at {args.rate:.0f} msg/s, p99 ingest → client",
            f"<= {TARGET_MS:.0f} ms",
            p99,
            "ms",
            p99 <= TARGET_MS and delivered >= 0.999,
        )
    )
    figures.append(
        Figure("  same, p50", "(reported)", percentile(latencies, 50) if latencies else 0, "ms", True)
    )
    figures.append(Figure("  events delivered / expected", "1.0", delivered, "x", delivered >= 0.999))
    report(figures, args.json)


if __name__ == "__main__":
    main()
