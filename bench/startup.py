"""How fast the tools start: ``max --help`` (target ≤ 300 ms) and ``max tui`` to its first paint
(target ≤ 1 s), medians of several runs, each a fresh process as a user would start it.

``max tui`` runs in a pseudo-terminal (120×36) against a real server on SQLite started here; the
clock runs from just before the process starts until the terminal receives the first screen
("connecting to …"), and then until the main screen shows the queue with the stream live.

Run: ``python bench/startup.py [--quick] [--json] [--runs N]``.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common import Figure, fresh_database, median, report

HELP_TARGET_MS = 300.0
PAINT_TARGET_MS = 1000.0
READY_TARGET_MS = 1500.0  # ours: the queue loaded and the stream live, half a second after paint
ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[P\]X^_].*?(?:\x1b\\|\x07)|\x1b[@-Z\\-_]", re.S)
FIRST_PAINT = b"connecting to"
MAIN_READY = b"live"
TIMEOUT_S = 20.0


def max_command() -> list[str]:
    beside = Path(sys.executable).with_name("max")
    found = str(beside) if beside.exists() else shutil.which("max")
    if found is None:
        raise SystemExit("the `max` command is not installed (pip install -e .)")
    return [found]


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAX_") and k != "NO_COLOR"}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"))
    env.update(TERM="xterm-256color", COLUMNS="120", LINES="36")
    return env


def time_help(runs: int, env: dict[str, str]) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([*max_command(), "--help"], env=env, check=True, capture_output=True)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


@contextmanager
def running_server() -> Iterator[tuple[str, str]]:
    """A MAX server on loopback with one agent; yields (url, token)."""
    from max_server.access import Actor
    from max_server.app import create_app
    from max_server.db import Database
    from max_server.schemas import UserCreate
    from max_server.serve import ThreadedServer
    from max_server.services import users
    from max_server.settings import load_settings

    with fresh_database("sqlite") as url, tempfile.TemporaryDirectory() as media:
        db = Database(url)
        with db.session() as session:
            _, token = users.create_user(
                session, Actor.system("bench"), UserCreate(name="Bench Agent", email="bench@example.com")
            )
        settings = load_settings(
            None,
            server={"environment": "test", "secret_key": "bench-secret-key-0123456789"},
            database={"url": url},
            storage={"path": media},
        )
        server = ThreadedServer(create_app(settings, db=db, background=False)).start()
        try:
            yield server.url, token
        finally:
            server.stop()
            db.dispose()


def time_tui(url: str, token: str, env: dict[str, str]) -> tuple[float, float]:
    """(ms to first paint, ms to the main screen live) for one start of ``max tui``."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))
    started = time.perf_counter()
    process = subprocess.Popen(
        [*max_command(), "tui", "--url", url, "--token", token],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        start_new_session=True,
    )
    os.close(follower)
    seen, first_paint, ready = b"", 0.0, 0.0
    try:
        while not ready:
            if time.perf_counter() - started > TIMEOUT_S:
                raise RuntimeError(f"max tui did not show its main screen within {TIMEOUT_S:.0f} s")
            readable, _, _ = select.select([leader], [], [], 0.05)
            if not readable:
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the process ended
                raise RuntimeError(f"max tui exited early: {ANSI.sub(b'', seen)[-400:]!r}") from None
            seen += ANSI.sub(b"", chunk)
            now = (time.perf_counter() - started) * 1000
            if not first_paint and FIRST_PAINT in seen:
                first_paint = now
            if first_paint and b"Mine" in seen and MAIN_READY in seen.split(b"Mine", 1)[1]:
                ready = now
        os.write(leader, b"\x11")  # ctrl+q: quit as an agent would (presence goes offline)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
        _drain(leader)
        os.close(leader)
    return first_paint, ready


def _drain(fd: int) -> None:
    while select.select([fd], [], [], 0)[0]:
        try:
            if not os.read(fd, 65536):
                return
        except OSError:
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print a JSON list of figures")
    parser.add_argument("--quick", action="store_true", help="fewer runs (3)")
    parser.add_argument("--runs", type=int, default=7, help="runs per figure (median reported)")
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs

    with tempfile.TemporaryDirectory() as home:
        env = clean_env(Path(home))
        time_help(1, env)  # warm the OS file cache, as a user's second run would be
        help_ms = median(time_help(runs, env))
        with running_server() as (url, token):
            time_tui(url, token, env)  # warm-up
            samples = [time_tui(url, token, env) for _ in range(runs)]
    paint_ms = median([s[0] for s in samples])
    ready_ms = median([s[1] for s in samples])
    measured = [
        ("max --help", HELP_TARGET_MS, help_ms),
        ("max tui: first paint", PAINT_TARGET_MS, paint_ms),
        ("max tui: queue live", READY_TARGET_MS, ready_ms),
    ]
    figures = [Figure(name, f"≤ {target:.0f} ms", ms, "ms", ms <= target) for name, target, ms in measured]
    report(figures, args.json)


if __name__ == "__main__":
    main()
