"""A TCP proxy on loopback that a test can cut and restore, to play a database outage.

    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = proxy.rewrite(database_url)  # the same URL through the proxy
        proxy.cut()       # every open connection is closed; new ones are closed at once
        proxy.restore()   # connections are accepted and relayed again

Each connection is relayed by two threads (one per direction) with blocking sockets: the
traffic of a few server processes is small, and a cut closes both sockets, which ends both.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

from sqlalchemy.engine import make_url


class TcpProxy:
    def __init__(
        self, upstream_host: str, upstream_port: int, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server((host, port))
        self._listener.settimeout(0.2)
        self.host, self.port = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name=f"tcpproxy-{self.port}", daemon=True)
        self.accepted = 0  # connections relayed since start
        self.refused = 0  # connections closed at once because the proxy was cut

    # Lifecycle -------------------------------------------------------------------------------
    def start(self) -> TcpProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()
        self._close_all()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Controls --------------------------------------------------------------------------------
    def cut(self) -> int:
        """Closes every relayed connection (with a reset) and refuses new ones until
        :meth:`restore`. Returns how many connections were open."""
        self._cut.set()
        return self._close_all()

    def restore(self) -> None:
        self._cut.clear()

    @property
    def is_cut(self) -> bool:
        return self._cut.is_set()

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._open) // 2

    def rewrite(self, url: str) -> str:
        """``url`` (a database URL) pointed at this proxy instead of its own host and port."""
        return make_url(url).set(host=self.host, port=self.port).render_as_string(hide_password=False)

    # Internals -------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed
            if self._cut.is_set():
                self.refused += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
                self.accepted += 1
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, target), name=f"tcpproxy-{self.port}-pump", daemon=True
                ).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass  # either side closed (or the proxy was cut): the pair is torn down below
        finally:
            for sock in (source, target):
                self._forget(sock)

    def _forget(self, sock: socket.socket) -> None:
        """A connection that ended by itself is closed quietly (a cut already reset it)."""
        with self._lock:
            known = sock in self._open
            self._open.discard(sock)
        if known:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _close_all(self) -> int:
        with self._lock:
            sockets = list(self._open)
            self._open.clear()
        for sock in sockets:
            _reset(sock)
        return len(sockets) // 2


def _reset(sock: socket.socket) -> None:
    """Closes with RST (SO_LINGER 0), as a crashed or restarted database host would look."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
