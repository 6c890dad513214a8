"""Outbound HTTP clients kept per process (connection pools are worth keeping), and closed
together when the process stops."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")
_lock = threading.Lock()
_clients: dict[Hashable, object] = {}


def shared(key: Hashable, make: Callable[[], T]) -> T:
    """The client for ``key``, made once per process."""
    with _lock:
        found = _clients.get(key)
        if found is None:
            found = _clients[key] = make()
        return found  # type: ignore[return-value]


def close_all() -> None:
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        close = getattr(client, "close", None)
        if close is not None:
            close()
