"""Typed HTTP clients for MAX's REST API (sync for the CLI, async for the console).

Imports nothing heavier than httpx and pydantic, and those only when a client is made, so
``max --help`` and ``max_tui`` start fast.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from max_server import __version__

if TYPE_CHECKING:
    import httpx
    from pydantic import BaseModel

T = TypeVar("T", bound="BaseModel")
USER_AGENT = f"max-client/{__version__}"


class ApiError(Exception):
    """The server answered with an error envelope (or could not be reached: status 0)."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        try:
            body = response.json()
            error = body["error"]
            return cls(response.status_code, str(error["code"]), str(error["message"]), error.get("details"))
        except (ValueError, KeyError, TypeError):
            text = response.text.strip()[:200] or response.reason_phrase
            return cls(response.status_code, "http_error", f"HTTP {response.status_code}: {text}")


def _httpx() -> Any:
    import httpx

    return httpx


def _connection_error(base_url: str, exc: Exception) -> ApiError:
    return ApiError(0, "unreachable", f"cannot reach the MAX server at {base_url}: {type(exc).__name__}")


def _headers(token: str | None) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _clean(params: dict[str, Any] | None) -> dict[str, Any] | None:
    if params is None:
        return None
    return {k: v for k, v in params.items() if v is not None}


class MaxClient:
    """Synchronous client. ``request`` returns parsed JSON; typed helpers return schemas."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._http = _httpx().Client(
            base_url=self.base_url, headers=_headers(token), timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MaxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request_with_status(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """Like :meth:`request`, also returning the status (e.g. 201 created vs 200 updated)."""
        try:
            response = self._http.request(method, path, **kwargs)
        except _httpx().HTTPError as exc:
            raise _connection_error(self.base_url, exc) from exc
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        return response.status_code, (response.json() if response.content else None)

    def request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None, **kwargs: Any
    ) -> Any:
        try:
            response = self._http.request(method, path, params=_clean(params), json=json, **kwargs)
        except _httpx().HTTPError as exc:
            raise _connection_error(self.base_url, exc) from exc
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        if not response.content:
            return None
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return self.request("POST", path, json=body, params=params)

    def patch(self, path: str, body: Any = None) -> Any:
        return self.request("PATCH", path, json=body)

    def put(self, path: str, body: Any = None) -> Any:
        return self.request("PUT", path, json=body)

    def delete(self, path: str, **params: Any) -> Any:
        return self.request("DELETE", path, params=params)

    def typed(self, model: type[T], method: str, path: str, **kwargs: Any) -> T:
        return model.model_validate(self.request(method, path, **kwargs))

    def paginate(self, path: str, key: str, *, limit: int = 200, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint, following ``next_cursor``."""
        cursor = None
        while True:
            page = self.get(path, **params, limit=limit, cursor=cursor)
            yield from page[key]
            cursor = page.get("next_cursor")
            if not cursor:
                return


class AsyncMaxClient:
    """Asynchronous client for the console (never blocks its event loop)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._http = _httpx().AsyncClient(
            base_url=self.base_url, headers=_headers(token), timeout=timeout, transport=transport
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None, **kwargs: Any
    ) -> Any:
        try:
            response = await self._http.request(method, path, params=_clean(params), json=json, **kwargs)
        except _httpx().HTTPError as exc:
            raise _connection_error(self.base_url, exc) from exc
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        if not response.content:
            return None
        return response.json()

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params=params)

    async def get_if_changed(self, path: str, etag: str | None, **params: Any) -> tuple[Any, str | None]:
        """A conditional GET (``If-None-Match``): ``(None, etag)`` when the server answers 304 Not
        Modified, else the parsed body and the response's ``ETag``."""
        headers = {"If-None-Match": etag} if etag else None
        try:
            response = await self._http.get(path, params=_clean(params), headers=headers)
        except httpx.HTTPError as exc:
            raise _connection_error(self.base_url, exc) from exc
        if response.status_code == 304:
            return None, etag
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        return (response.json() if response.content else None), response.headers.get("ETag")

    async def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return await self.request("POST", path, json=body, params=params)

    async def patch(self, path: str, body: Any = None) -> Any:
        return await self.request("PATCH", path, json=body)

    async def put(self, path: str, body: Any = None) -> Any:
        return await self.request("PUT", path, json=body)

    async def delete(self, path: str, **params: Any) -> Any:
        return await self.request("DELETE", path, params=params)

    async def paginate(
        self, path: str, key: str, *, limit: int = 200, **params: Any
    ) -> AsyncIterator[dict[str, Any]]:
        cursor = None
        while True:
            page = await self.get(path, **params, limit=limit, cursor=cursor)
            for item in page[key]:
                yield item
            cursor = page.get("next_cursor")
            if not cursor:
                return
