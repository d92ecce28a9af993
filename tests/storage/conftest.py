"""A real S3-compatible endpoint for the storage tests: moto's server on a loopback port, one per session."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.session import get_session
from moto.server import ThreadedMotoServer

from app.storage.s3 import S3Storage

BUCKET = "vidgate-test"
REGION = "us-east-1"
ACCESS_KEY = "AKIATESTVIDGATE0000"
SECRET_KEY = "test-secret-key-that-must-never-leak"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"

    async def create_bucket() -> None:
        async with admin_client(endpoint) as s3:
            await s3.create_bucket(Bucket=BUCKET)

    asyncio.run(create_bucket())
    yield endpoint
    server.stop()


def admin_client(endpoint: str) -> Any:
    return get_session().create_client(
        "s3",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


@pytest.fixture
async def s3_admin(s3_endpoint: str) -> AsyncIterator[Any]:
    """A plain client, to look at the bucket behind the storage's back."""
    async with admin_client(s3_endpoint) as s3:
        yield s3


def make_storage(endpoint: str, scratch: Path, **overrides: object) -> S3Storage:
    values: dict[str, object] = {
        "bucket": BUCKET,
        "endpoint_url": endpoint,
        "region": REGION,
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "scratch_dir": scratch,
        "part_size": 5 * 1024 * 1024,
    }
    values.update(overrides)
    return S3Storage(**values)  # type: ignore[arg-type]


@pytest.fixture
async def storage(s3_endpoint: str, tmp_path: Path) -> AsyncIterator[S3Storage]:
    """Each test writes under a prefix of its own in the shared bucket."""
    async with make_storage(s3_endpoint, tmp_path / "scratch", prefix=f"t/{uuid.uuid4().hex}") as s:
        yield s
