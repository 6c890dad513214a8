"""The address guard for every outbound URL MAX calls on someone's behalf (webhook
subscriptions, Chat App callbacks, attachment URLs).

A URL whose host resolves to a private, loopback, link-local or otherwise non-global address is
refused unless ``webhooks.allow_private_networks`` is set. The connection then goes to the very
address that was checked (no second lookup that could answer differently), with the original
host name in the ``Host`` header and for TLS, and redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

Resolver = Callable[[str, int], list[str]]


class AddressRefused(Exception):
    """The URL is not allowed (scheme, or an address on a private network)."""


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Target:
    url: str  # with the checked address in place of the host name
    host: str  # the original host[:port], for the Host header
    server_name: str  # the original host name, for TLS (SNI and certificate check)
    address: str


def check(url: str, *, allow_private: bool, resolver: Resolver = system_resolver) -> Target:
    """Resolves once and returns where to connect; raises :class:`AddressRefused`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise AddressRefused(f"only http and https URLs are allowed, not {parts.scheme or 'none'}")
    host = parts.hostname
    if not host:
        raise AddressRefused("the URL has no host")
    if parts.username or parts.password:
        raise AddressRefused("URLs with credentials are not allowed")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = [host] if _is_ip(host) else resolver(host, port)
    except OSError as exc:
        raise AddressRefused(f"cannot resolve {host}: {exc.strerror or exc}") from None
    if not addresses:
        raise AddressRefused(f"{host} has no address")
    if not allow_private:
        for address in addresses:
            if not ipaddress.ip_address(address.split("%")[0]).is_global:
                raise AddressRefused(
                    f"{host} resolves to {address}, a private, loopback or link-local address "
                    "(set webhooks.allow_private_networks to allow it)"
                )
    address = addresses[0]
    netloc_host = f"[{address}]" if ":" in address else address
    netloc = f"{netloc_host}:{parts.port}" if parts.port else netloc_host
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    return Target(url=pinned, host=parts.netloc, server_name=host, address=address)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def request(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    allow_private: bool,
    resolver: Resolver = system_resolver,
    **kwargs: Any,
) -> httpx.Response:
    """One request through the guard (never follows redirects)."""
    target = check(url, allow_private=allow_private, resolver=resolver)
    headers = {**(kwargs.pop("headers", None) or {}), "Host": target.host}
    return client.request(
        method,
        target.url,
        headers=headers,
        extensions={"sni_hostname": target.server_name},
        follow_redirects=False,
        **kwargs,
    )


@contextmanager
def stream(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    allow_private: bool,
    resolver: Resolver = system_resolver,
    **kwargs: Any,
) -> Iterator[httpx.Response]:
    target = check(url, allow_private=allow_private, resolver=resolver)
    headers = {**(kwargs.pop("headers", None) or {}), "Host": target.host}
    with client.stream(
        method,
        target.url,
        headers=headers,
        extensions={"sni_hostname": target.server_name},
        follow_redirects=False,
        **kwargs,
    ) as response:
        yield response


@contextmanager
def stream_via(
    transport: httpx.BaseTransport,
    method: str,
    target: Target,
    *,
    headers: dict[str, str],
    content: bytes,
    timeout: float,
) -> Iterator[httpx.Response]:
    """A request to a target :func:`check` returned, straight through an httpx transport: no
    client layer (no cookies carried from one receiver to the next, no redirect handling, no URL
    merging; that layer cost a third of each webhook POST). The transport pools connections by
    the checked address, so over https give each host name its own transport: one pool for two
    names on one address would send to one over a connection whose certificate was the other's.
    """
    request = httpx.Request(
        method,
        target.url,
        headers={**headers, "Host": target.host},
        content=content,
        extensions={"sni_hostname": target.server_name, "timeout": httpx.Timeout(timeout).as_dict()},
    )
    response = transport.handle_request(request)
    response.request = request
    try:
        yield response
    finally:
        response.close()
