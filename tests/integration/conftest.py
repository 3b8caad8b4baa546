"""A Prefect API for the flow tests: one temporary server for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def s3_endpoint():
    """One moto server for the session, reached over HTTP like AWS."""
    from tests.s3_server import moto_server

    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3(s3_endpoint):
    """A clean S3 for each test."""
    s3_endpoint.reset()
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    return s3_endpoint
