"""``max demo`` as a real child process: headless (its announced variables, and a clean stop),
or with the console in a pseudo-terminal."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import queue
import re
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

from tests.support.processes import clean_env, max_command

T = TypeVar("T")
START_TIMEOUT = 40.0


class DemoProcess:
    """Starts ``max demo --headless ARGS``; :attr:`lines` are its stdout lines, :attr:`values`
    its ``KEY=VALUE`` lines. stderr goes to a file (``log``), so no pipe can fill up."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.workdir = workdir
        home = workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        # Temporary directories (the demo's default data directory) land under the test's own.
        self.tmp = workdir / "tmp"
        self.tmp.mkdir(exist_ok=True)
        self.env = clean_env(home, TMPDIR=str(self.tmp), COLUMNS="200")
        self.args = ["demo", "--headless", *args]
        self.stderr_path = workdir / "demo-stderr.log"
        self.lines: list[str] = []
        self.values: dict[str, str] = {}
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = START_TIMEOUT) -> DemoProcess:
        with open(self.stderr_path, "w") as stderr:
            self.proc = subprocess.Popen(
                max_command(*self.args),
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                start_new_session=True,
            )
        assert self.proc.stdout is not None
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()
        try:
            self._wait_announcement(timeout)
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_announcement(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while not self.lines or not self.lines[-1].startswith("# Press Ctrl-C"):
            left = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise AssertionError(
                    f"the demo did not announce itself in {timeout:.0f} s: {self.stderr()}"
                ) from None
            if line is None:
                raise AssertionError(f"the demo exited with {self.proc.wait()}: {self.stderr()}")
            self.lines.append(line)
            key, sep, value = line.partition("=")
            if sep and not line.startswith("#"):
                self.values[key] = value

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-3000:]

    def interrupt(self, timeout: float = 30) -> int:
        """Ctrl-C (SIGINT to the demo process itself) and its exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def eventually(probe: Callable[[], T | None], timeout: float = 40.0, what: str = "the condition") -> T:
    """Calls ``probe`` until it returns something truthy (an AssertionError counts as not yet)."""
    deadline = time.monotonic() + timeout
    last: str = ""
    while True:
        try:
            found = probe()
            if found:
                return found
        except AssertionError as exc:
            last = str(exc)
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s {last}")
        time.sleep(0.25)


ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


class ConsoleDemo:
    """``max demo ARGS`` (the console) in a pseudo-terminal of 120×40, as a person runs it; a
    thread keeps reading the screen so the child never blocks on a full terminal."""

    def __init__(self, workdir: Path, *args: str) -> None:
        home = workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        self.tmp = workdir / "tmp"
        self.tmp.mkdir(exist_ok=True)
        self.env = clean_env(home, TMPDIR=str(self.tmp), TERM="xterm-256color", COLORTERM="truecolor")
        self.env.pop("NO_COLOR", None)
        self.args = ["demo", *args]
        self.proc: subprocess.Popen[bytes] | None = None
        self._screen = bytearray()
        self._lock = threading.Lock()
        self._master = -1

    def start(self) -> ConsoleDemo:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.proc = subprocess.Popen(
            max_command(*self.args), env=self.env, stdin=slave, stdout=slave, stderr=slave,
            start_new_session=True,
        )  # fmt: skip
        os.close(slave)
        self._master = master
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # the child closed the terminal
                return
            if not chunk:
                return
            with self._lock:
                self._screen += chunk

    def text(self) -> str:
        """Everything written to the terminal so far, without escape sequences."""
        with self._lock:
            raw = bytes(self._screen)
        return ANSI.sub("", raw.decode("utf-8", errors="replace"))

    def press(self, keys: bytes) -> None:
        os.write(self._master, keys)

    def data_dir(self) -> Path | None:
        found = sorted(self.tmp.glob("max-demo-*"))
        return found[0] if found else None

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self._master >= 0:
            with contextlib.suppress(OSError):
                os.close(self._master)
            self._master = -1
