"""Media in an S3-compatible bucket: AWS S3, Cloudflare R2 (``endpoint_url``) and the like.

Uploads go from the downloaded temporary file with boto3's managed transfer, which reads the file
part by part as it sends: memory stays around ``max_concurrency × multipart_chunksize`` at most
(measured by ``bench/media.py``). Links are presigned GETs that also fix the download name and
content type (``ResponseContentDisposition`` / ``ResponseContentType``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO, cast

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from max_server.storage.base import ObjectNotFound, StorageError, content_disposition, validate_key

MiB = 1024 * 1024
# Parts of 8 MiB (S3's minimum is 5 MiB), two in flight: a 100 MB document costs a few MiB of
# buffers, not 100 MB, and still uploads at a good pace.
TRANSFER = TransferConfig(
    multipart_threshold=16 * MiB,
    multipart_chunksize=8 * MiB,
    max_concurrency=2,
    max_io_queue=4,
    io_chunksize=256 * 1024,
    use_threads=True,
)
MAX_LINK_S = 7 * 24 * 3600  # SigV4 presigned URLs live at most 7 days
_DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys
_BOTO_ERRORS = (BotoCoreError, ClientError, Boto3Error)


class S3Storage:
    name = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str = "",
        region: str = "",
        access_key_id: str = "",
        secret_access_key: str = "",
    ) -> None:
        if not bucket:
            raise StorageError("storage.bucket (MAX_STORAGE__BUCKET) must be set for the s3 backend")
        self.bucket = bucket
        config = Config(
            signature_version="s3v4",
            # Custom endpoints (R2, MinIO, moto) want path-style addressing; AWS picks for itself.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            retries={"max_attempts": 5, "mode": "standard"},
            # Only the checksums S3 requires: several S3-compatible stores refuse the newer
            # default trailing checksums.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            connect_timeout=10,
            read_timeout=60,
            max_pool_connections=16,
        )
        session = boto3.session.Session()
        self.client: Any = session.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=config,
        )

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        validate_key(key)
        try:
            self.client.upload_file(
                str(path), self.bucket, key, ExtraArgs={"ContentType": content_type}, Config=TRANSFER
            )
        except (*_BOTO_ERRORS, OSError) as exc:
            raise StorageError(f"cannot upload {key} to bucket {self.bucket}: {_describe(exc)}") from None

    def open(self, key: str) -> BinaryIO:
        validate_key(key)
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                raise ObjectNotFound(f"no media stored under {key}") from None
            raise StorageError(f"cannot read {key}: {_describe(exc)}") from None
        except _BOTO_ERRORS as exc:
            raise StorageError(f"cannot read {key}: {_describe(exc)}") from None
        return cast(BinaryIO, answer["Body"])

    def delete(self, key: str) -> None:
        validate_key(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)  # a missing key is not an error
        except _BOTO_ERRORS as exc:
            raise StorageError(f"cannot delete {key}: {_describe(exc)}") from None

    def delete_many(self, keys: Iterable[str]) -> dict[str, StorageError]:
        failed: dict[str, StorageError] = {}
        valid: list[str] = []
        for key in keys:
            try:
                valid.append(validate_key(key))
            except StorageError as exc:
                failed[key] = exc
        for start in range(0, len(valid), _DELETE_BATCH):
            batch = valid[start : start + _DELETE_BATCH]
            try:
                answer = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            except _BOTO_ERRORS as exc:
                error = StorageError(f"cannot delete objects: {_describe(exc)}")
                failed.update(dict.fromkeys(batch, error))
                continue
            for item in answer.get("Errors", []):
                failed[item.get("Key", "")] = StorageError(
                    f"cannot delete {item.get('Key')}: {item.get('Code')} {item.get('Message', '')}".strip()
                )
        return failed

    def exists(self, key: str) -> bool:
        validate_key(key)
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StorageError(f"cannot check {key}: {_describe(exc)}") from None
        except _BOTO_ERRORS as exc:
            raise StorageError(f"cannot check {key}: {_describe(exc)}") from None
        return True

    def signed_url(self, key: str, expires_in_s: int, filename: str, content_type: str) -> str:
        validate_key(key)
        try:
            return str(
                self.client.generate_presigned_url(
                    "get_object",
                    Params={
                        "Bucket": self.bucket,
                        "Key": key,
                        "ResponseContentDisposition": content_disposition(filename),
                        "ResponseContentType": content_type,
                    },
                    ExpiresIn=max(1, min(int(expires_in_s), MAX_LINK_S)),
                )
            )
        except _BOTO_ERRORS as exc:
            raise StorageError(f"cannot sign a link to {key}: {_describe(exc)}") from None

    def close(self) -> None:
        self.client.close()


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _describe(exc: BaseException) -> str:
    # botocore messages name the operation and the error code, never the credentials.
    return f"{type(exc).__name__}: {exc}"
