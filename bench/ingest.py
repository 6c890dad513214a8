"""Inbound WhatsApp throughput and latency, side by side with the floor.

Signed text webhooks go through MAX's whole ingest (verify, dedupe, identity, conversation, rate
limit, triage, store, jobs, events; a team of 50 online agents takes every new conversation
through the ``routing.assign`` jobs, and the backlog left 1 s after each run is reported) from a separate load generator (wrk with
``bench/lua/webhooks.lua``: far cheaper than the server), closed loop at concurrency 32, with 1
and 2 server processes, on SQLite and PostgreSQL; then an open-loop run at a fixed offered rate
for latency (a small asyncio generator that measures from each request's scheduled time, so a
slow server cannot hide its queueing). In the same run, the floor: a bare FastAPI endpoint on the
same engine settings that verifies the signature and inserts one row (``bench/floor_app.py``).

Besides rates, it reports the CPU time the server's processes spend per message (utime + stime
from ``/proc``, robust to other load on a shared machine) and what that means in cores at
1,000 msg/s, for MAX and the floor: that, not the rate on a busy 2-core box, says where the limit is.

Run: ``python bench/ingest.py [--quick] [--json] [--duration S] [--only postgres] [--workers N]
[--no-open-loop] [--repeat N]`` (each closed-loop figure is the median of N runs; needs ``wrk``: ``apt-get install wrk``; PostgreSQL from
``MAX_BENCH_DATABASE_URL``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common import Figure, cpu_seconds, fresh_database, median, online_team, percentile, report
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-app-secret"
PHONE = "1122334455667"
TARGET_RATE, TARGET_RATIO, TARGET_P99_MS, OFFERED = 1000.0, 0.6, 50.0, 500


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bodies_file(path: Path, count: int, customers: int, prefix: str) -> None:
    """``count`` signed text webhooks from ``customers`` customers (a few messages each, under
    the rate limit), one per line: ``<signature> <json>``."""
    from max_server.channels.whatsapp import payloads as p

    now = time.time()
    with path.open("w") as out:
        for n in range(count):
            wa_id = f"52155{n % customers:08d}"
            body = p.encode(
                p.text_webhook(
                    PHONE, wa_id, f"wamid.{prefix}.{n}", f"hola, mensaje {n}", ts=now - 60 + n % 50
                )
            )
            out.write(f"{p.sign(body, SECRET)} {body.decode()}\n")


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not start")


@contextmanager
def serve(command: list[str], env: dict[str, str], url: str) -> Iterator[subprocess.Popen[bytes]]:
    log = tempfile.NamedTemporaryFile(prefix="max-bench-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT
    )
    try:
        wait_healthy(url, proc)
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def max_server(db_url: str, workdir: Path, workers: int, port: int) -> tuple[list[str], dict[str, str]]:
    config = workdir / "config.toml"
    config.write_text(
        f'[server]\nport = {port}\nlog_level = "warning"\n[database]\nurl = "{db_url}"\npool_size = 20\n'
        f'[storage]\npath = "{workdir}/media"\n[whatsapp]\napp_secret = "{SECRET}"\nphone_number_id = "{PHONE}"\n'
        "[rate_limits]\nmessages_per_minute = 1000\n"
        # The seeded agents send no heartbeats: they stay online for the bench.
        "[routing]\npresence_timeout = 86400\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAX_")}
    env["MAX_CONFIG"] = str(config)
    return [sys.executable, "-m", "max_cli", "server", "run", "--workers", str(workers)], env


def floor_server(db_url: str, workers: int, port: int) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "FLOOR_DATABASE_URL": db_url, "FLOOR_APP_SECRET": SECRET, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.floor_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    return command, env


def wrk(url: str, bodies: Path, duration: int, connections: int, start: int = 0) -> dict[str, float]:
    script = ROOT / "bench" / "lua" / "webhooks.lua"
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
            "--",
            str(bodies),
            str(start),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["rate"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


async def open_loop(url: str, bodies: Path, rate: int, seconds: int) -> list[float]:
    """Latencies (ms) at a fixed offered rate, measured from each request's scheduled send time."""
    lines = bodies.read_text().splitlines()
    host, port = url.removeprefix("http://").split(":")
    requests = []
    for line in lines[: rate * seconds]:
        sig, body = line.split(" ", 1)
        raw = body.encode()
        head = (
            f"POST /webhooks/whatsapp HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"X-Hub-Signature-256: {sig}\r\nContent-Length: {len(raw)}\r\n\r\n"
        ).encode()
        requests.append(head + raw)
    latencies: list[float] = []
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(64):
        pool.put_nowait(await asyncio.open_connection(host, int(port)))

    async def send(payload: bytes, scheduled: float) -> None:
        reader, writer = await pool.get()
        writer.write(payload)
        await writer.drain()
        status = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        latencies.append((time.perf_counter() - scheduled) * 1000)
        if not status.startswith(b"HTTP/1.1 200"):
            latencies[-1] = float("inf")
        pool.put_nowait((reader, writer))

    start = time.perf_counter() + 0.1
    tasks = []
    for n, payload in enumerate(requests):
        scheduled = start + n / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        tasks.append(asyncio.create_task(send(payload, scheduled)))
    await asyncio.gather(*tasks)
    while not pool.empty():
        _, writer = pool.get_nowait()
        writer.close()
    return latencies


AGENTS = 50


def seed_agents(db_url: str) -> None:
    """A team of ``AGENTS`` online agents with room for every conversation, and the WhatsApp
    number routed to it: each new conversation is triaged, queued and assigned by the
    ``routing.assign`` jobs during the run, as in production."""
    from max_server.db import Database
    from max_server.models import ChannelAccount

    db = Database(db_url, pool_size=1)
    with db.session() as session:
        team, _ = online_team(session, AGENTS)
        session.add(ChannelAccount(kind="whatsapp", external_id=PHONE, name="bench", default_team_id=team.id))
        session.commit()
    db.dispose()


def backlog(db_url: str) -> tuple[int, int, int]:
    """Jobs still queued or running, conversations still waiting for an agent, and conversations."""
    from sqlalchemy import func
    from sqlmodel import col, select

    from max_server.db import Database
    from max_server.models import Conversation, Job

    db = Database(db_url, pool_size=1)
    with db.session(write=False) as session:
        jobs = session.exec(
            select(func.count()).select_from(Job).where(col(Job.state).in_(("queued", "running")))
        ).one()
        waiting = session.exec(
            select(func.count()).select_from(Conversation).where(Conversation.status == "queued")
        ).one()
        total = session.exec(select(func.count()).select_from(Conversation)).one()
    db.dispose()
    return int(jobs), int(waiting), int(total)


def run(kind: str, workers: int, args: argparse.Namespace, workdir: Path, figures: list[Figure]) -> None:
    label = f"{kind}, {workers} process{'es' if workers > 1 else ''}"
    count = args.duration * args.repeat * 3000 + 8000
    bodies = workdir / f"bodies-{kind}-{workers}.txt"
    bodies_file(bodies, count, customers=count // 3, prefix=f"{kind}{workers}")
    rates: dict[str, float] = {}
    cpu: dict[str, tuple[float, float]] = {}  # target -> (server ms, database ms) per message
    for target in ("floor", "max"):
        with fresh_database(kind) as db_url:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            command, env = (
                max_server(db_url, workdir, workers, port)
                if target == "max"
                else floor_server(db_url, workers, port)
            )
            database = make_url(db_url).database if kind == "postgres" else None
            if target == "max":
                seed_agents(db_url)
            runs: list[dict[str, float]] = []
            with serve(command, env, url) as proc:
                warm = wrk(url, bodies, 2, args.connections)  # warm-up: pools, caches, first conversations
                sent = int(warm["requests"])
                for _ in range(args.repeat):
                    # Each run goes on where the last stopped: new messages, not redeliveries.
                    before = cpu_seconds(proc.pid), cpu_seconds(database=database) if database else 0.0
                    result = wrk(url, bodies, args.duration, args.connections, start=sent)
                    after = cpu_seconds(proc.pid), cpu_seconds(database=database) if database else 0.0
                    sent += int(result["requests"])
                    served = max(1, result["requests"])
                    result["server_ms"] = (after[0] - before[0]) * 1000 / served
                    result["database_ms"] = (after[1] - before[1]) * 1000 / served
                    runs.append(result)
                if target == "max":
                    time.sleep(1)  # what was acknowledged last has a moment to be routed
                    jobs, waiting, conversations = backlog(db_url)
            # Medians of the runs, each figure on its own (a shared machine's noise hits runs unevenly).
            result = {key: median([r[key] for r in runs]) for key in runs[0]}
            result["non2xx"] = sum(r["non2xx"] for r in runs)
            result["socket_errors"] = sum(r["socket_errors"] for r in runs)
            rates[target] = result["rate"]
            cpu[target] = (result["server_ms"], result["database_ms"])
            if target == "max":
                errors = result["non2xx"] + result["socket_errors"]
                gated = kind == "postgres" and workers == 2
                figures.append(
                    Figure(
                        f"ingest {label}: messages/s (c={args.connections}, median of {args.repeat})",
                        f">= {TARGET_RATE:.0f}" if gated else "(reported)",
                        result["rate"],
                        "msg/s",
                        result["rate"] >= TARGET_RATE if gated else True,
                    )
                )
                figures.append(
                    Figure(
                        f"ingest {label}: p50 / p99 ack latency",
                        "(reported)",
                        result["p50_us"] / 1000,
                        f"ms / {result['p99_us'] / 1000:.1f} ms",
                        True,
                    )
                )
                figures.append(
                    Figure(
                        f"ingest {label}: errors, job queue depth 1 s after",
                        "0 errors",
                        errors,
                        f"errors / {jobs} jobs queued",
                        errors == 0,
                    )
                )
                figures.append(
                    Figure(
                        f"ingest {label}: conversations still waiting for an agent 1 s after",
                        "(reported)",
                        waiting,
                        f"of {conversations} ({AGENTS} agents online)",
                        True,
                    )
                )
    ratio = rates["max"] / rates["floor"] if rates["floor"] else 0.0
    gated = kind == "postgres" and workers == 2
    figures.append(
        Figure(
            f"ingest {label}: ratio to the floor ({rates['floor']:.0f} msg/s)",
            f">= {TARGET_RATIO}" if gated else "(reported)",
            ratio,
            "x",
            ratio >= TARGET_RATIO if gated else True,
        )
    )
    cpu_figures(label, cpu, kind == "postgres", figures)


def cpu_figures(
    label: str, cpu: dict[str, tuple[float, float]], database: bool, figures: list[Figure]
) -> None:
    """Where the limit is on this machine, whatever else runs on it: CPU time per message
    (utime + stime of the server's processes over the measured run, divided by the requests)
    and the cores that cost means at WhatsApp's top rate (1,000 msg/s x ms/msg / 1,000 ms/s)."""
    server, floor = cpu["max"][0], cpu["floor"][0]
    figures.append(
        Figure(
            f"ingest {label}: server CPU per message (floor {floor:.2f} ms)",
            "(reported)",
            server,
            "ms/msg",
            True,
        )
    )
    figures.append(
        Figure(
            f"ingest {label}: cores needed for 1,000 msg/s at this CPU cost (floor {floor:.1f})",
            "(reported)",
            server,
            "cores",
            True,
        )
    )
    if database:
        # The floor's pool overflows and closes connections, taking their CPU figures with them:
        # only MAX's (a steady pool) is reported.
        figures.append(
            Figure(
                f"ingest {label}: PostgreSQL backends' CPU per message",
                "(reported)",
                cpu["max"][1],
                "ms/msg",
                True,
            )
        )


def latency(args: argparse.Namespace, workdir: Path, figures: list[Figure]) -> None:
    """Open loop at the target's 500 msg/s and at ``--within-rate`` (a rate this machine's
    closed-loop runs show it sustains): the second says what a message waits when the server
    keeps up, the first what happens past its capacity (queueing, not service time)."""
    seconds = 3 if args.quick else 15
    for rate in (OFFERED, args.within_rate):
        bodies = workdir / f"bodies-open-{rate}.txt"
        bodies_file(bodies, rate * seconds + 10, customers=rate * seconds // 2, prefix=f"open{rate}")
        with fresh_database("postgres") as db_url:
            seed_agents(db_url)
            port = free_port()
            command, env = max_server(db_url, workdir, 2, port)
            with serve(command, env, f"http://127.0.0.1:{port}"):
                latencies = asyncio.run(open_loop(f"http://127.0.0.1:{port}", bodies, rate, seconds))
        p99 = percentile(latencies, 99)
        gated = rate == OFFERED
        figures.append(
            Figure(
                f"ingest postgres, 2 processes: p99 at {rate} msg/s offered (open loop)",
                f"<= {TARGET_P99_MS:.0f} ms" if gated else "(reported)",
                p99,
                f"ms (p50 {percentile(latencies, 50):.1f} ms)",
                p99 <= TARGET_P99_MS if gated else True,
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--duration", type=int, default=0, help="seconds per closed-loop run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--within-rate", type=int, default=50, help="second open-loop rate (msg/s)")
    parser.add_argument("--repeat", type=int, default=3, help="measured runs per server (medians)")
    parser.add_argument("--only", choices=["sqlite", "postgres"], default=None)
    parser.add_argument("--workers", type=int, default=None, help="only the runs with N processes")
    parser.add_argument("--no-open-loop", action="store_true", help="skip the open-loop latency run")
    args = parser.parse_args()
    args.duration = args.duration or (2 if args.quick else 10)
    if shutil.which("wrk") is None:
        raise SystemExit("bench/ingest.py needs wrk as the load generator: apt-get install wrk")
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="max-ingest-bench-") as tmp:
        workdir = Path(tmp)
        plan = [("sqlite", 1), ("postgres", 1), ("postgres", 2)]
        for kind, workers in plan:
            if args.only in (None, kind) and args.workers in (None, workers):
                run(kind, workers, args, workdir, figures)
        if args.only in (None, "postgres") and not args.no_open_loop:
            latency(args, workdir, figures)
    report(figures, args.json)


if __name__ == "__main__":
    main()
