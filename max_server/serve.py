"""Run an ASGI app on uvicorn: in a background thread (for tests, the WhatsApp sandbox and
``max demo``), or as several worker processes under one supervisor (``max server run --workers``)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

START_TIMEOUT_S = 15.0


class ThreadedServer:
    """A uvicorn server for ``app`` on ``host:port`` in a daemon thread.

    ``port=0`` picks a free port. The listening socket is bound here, when the server is made, and
    handed to uvicorn, so :attr:`port` and :attr:`url` are known at once and no other process can
    take the port between choosing it and serving on it. ``options`` go to ``uvicorn.Config``.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        self.host = host
        self._socket = _bind(host, port)
        self.port = int(self._socket.getsockname()[1])
        url_host = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - a name, not a bind
        if ":" in url_host:
            url_host = f"[{url_host}]"
        self.url = f"http://{url_host}:{self.port}"
        settings: dict[str, Any] = {"log_config": None, "access_log": False, "lifespan": "on"}
        settings.update(options)
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=self.port, **settings))
        self._thread = threading.Thread(
            target=self.server.run,
            kwargs={"sockets": [self._socket]},
            name=f"uvicorn-{self.port}",
            daemon=True,
        )

    def start(self) -> ThreadedServer:
        """Starts serving and returns once uvicorn accepts connections (``RuntimeError`` otherwise)."""
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:
            if not self._thread.is_alive():
                self._socket.close()
                raise RuntimeError(f"the server on {self.url} stopped while starting (see the log)")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server on {self.url} did not start within {START_TIMEOUT_S:.0f} s")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Asks uvicorn to shut down gracefully and waits for its thread (safe to call twice)."""
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)
        # uvicorn closes the socket it served on; this covers a server that was never started.
        self._socket.close()

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and self.server.started

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As uvicorn does for the sockets it binds itself: a restart may reuse a port in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class WorkerSupervisor(Multiprocess):
    """uvicorn's supervisor of worker processes, which also drops a worker's live gauges (the
    connected agents it served) from ``PROMETHEUS_MULTIPROC_DIR`` once it is gone: killed and
    replaced, removed on SIGTTOU or SIGHUP, or stopped with the rest. Otherwise a dead worker's last
    value would be summed forever."""

    def keep_subprocess_alive(self) -> None:
        self._forgetting_exits(super().keep_subprocess_alive)

    def handle_signals(self) -> None:
        self._forgetting_exits(super().handle_signals)

    def join_all(self) -> None:
        super().join_all()
        _forget(process.pid for process in self.processes)

    def _forgetting_exits(self, step: Any) -> None:
        before = {process.pid for process in self.processes}
        step()
        _forget(before - {process.pid for process in self.processes})


def _forget(pids: Iterable[int | None]) -> None:
    from max_server import metrics  # prometheus_client: only where workers are supervised

    for pid in pids:
        metrics.forget_process(pid)


def run_workers(app: str, workers: int, **options: Any) -> None:
    """``uvicorn.run(app, workers=workers, **options)`` under :class:`WorkerSupervisor`; ``app``
    is an import string (each worker imports it)."""
    config = uvicorn.Config(app, workers=workers, **options)
    socket_ = config.bind_socket()
    try:
        WorkerSupervisor(config, sockets=[socket_]).run()
    finally:
        socket_.close()
