"""Shared pieces of the reliability suite: a real S3 endpoint (moto in server mode on loopback)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

# moto accepts any credentials; random ones let the suite search the logs for them.
S3_KEYS = {
    "access_key_id": "AKIA" + secrets.token_hex(8).upper(),
    "secret_access_key": secrets.token_urlsafe(30),
    "region": "us-east-1",
}


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(moto_url: str) -> Iterator[Any]:
    client = boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name=S3_KEYS["region"],
        aws_access_key_id=S3_KEYS["access_key_id"],
        aws_secret_access_key=S3_KEYS["secret_access_key"],
    )
    yield client
    client.close()
