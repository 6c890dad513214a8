"""Media storage: local disk (default) or an S3-compatible bucket, chosen by ``[storage]``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from max_server import httpclients
from max_server.storage.base import (
    InvalidKey,
    ObjectNotFound,
    Storage,
    StorageError,
    content_disposition,
    content_type,
    safe_filename,
    validate_key,
)

if TYPE_CHECKING:
    from max_server.settings import Settings

__all__ = [
    "InvalidKey",
    "ObjectNotFound",
    "Storage",
    "StorageError",
    "content_disposition",
    "content_type",
    "get_storage",
    "make_storage",
    "safe_filename",
    "validate_key",
]


def make_storage(settings: Settings) -> Storage:
    """A new backend for the settings (raises :class:`StorageError` when misconfigured)."""
    if settings.storage.backend == "s3":
        from max_server.storage.s3 import S3Storage  # boto3 loads only when it is used

        cfg = settings.storage
        return S3Storage(
            cfg.bucket,
            endpoint_url=cfg.endpoint_url,
            region=cfg.region,
            access_key_id=cfg.access_key_id,
            secret_access_key=cfg.secret_access_key,
        )
    from max_server.storage.local import LocalStorage

    return LocalStorage(settings.storage_path, settings.server.base_url, settings.server.secret_key)


def get_storage(settings: Settings) -> Storage:
    """The process's backend for these settings (one S3 connection pool per process)."""
    key = (
        "storage",
        settings.storage,
        str(settings.storage_path),
        settings.server.base_url,
        settings.server.secret_key,
    )
    return httpclients.shared(key, lambda: make_storage(settings))
