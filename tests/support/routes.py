"""Walks the app's routes (whatever FastAPI's internal layout) with their role guards."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant

from max_server.api.deps import RoleGuard


@dataclass(frozen=True)
class RouteInfo:
    method: str
    path: str
    min_role: str | None
    is_websocket: bool = False

    def concrete_path(self) -> str:
        """The path with every parameter filled with a plausible value."""
        return re.sub(r"\{[^}]+\}", "1", self.path)


def _guards(dependant: Dependant | None) -> Iterator[RoleGuard]:
    if dependant is None:
        return
    if isinstance(dependant.call, RoleGuard):
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _guards(sub)


def _contexts(app: FastAPI) -> Iterator[Any]:
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: routes are flat
        yield from app.routes
        return
    yield from iter_route_contexts(app.routes)


def api_routes(app: FastAPI) -> list[RouteInfo]:
    found: list[RouteInfo] = []
    for route in _contexts(app):
        path = getattr(route, "path", None)
        dependant = getattr(route, "dependant", None)
        if path is None or dependant is None:
            continue  # FastAPI's own docs routes
        methods = getattr(route, "methods", None)
        roles = sorted({g.min_role for g in _guards(dependant)}, key=["agent", "supervisor", "admin"].index)
        min_role = roles[-1] if roles else None
        if not methods:
            found.append(RouteInfo("WEBSOCKET", path, min_role, is_websocket=True))
            continue
        for method in sorted(methods - {"HEAD", "OPTIONS"}):
            found.append(RouteInfo(method, path, min_role))
    return found
