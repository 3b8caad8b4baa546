"""A real S3 (and Glue, Athena) endpoint for tests: moto's server over HTTP on a free port.

The code under test reaches it exactly as it reaches AWS, through s3fs and boto3,
with ``AWS_ENDPOINT_URL`` pointing at it: no in-process patching.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3
from moto.server import ThreadedMotoServer

REGION = "us-east-1"


@dataclass(frozen=True)
class S3Endpoint:
    url: str

    def client(self, service: str = "s3"):
        return boto3.client(service, endpoint_url=self.url, region_name=REGION)

    def reset(self) -> None:
        """Forget every bucket and catalog entry (moto's reset API)."""
        import urllib.request

        urllib.request.urlopen(
            urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        ).read()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[S3Endpoint]:
    """Start moto on loopback; point AWS_ENDPOINT_URL and fake credentials at it."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in _ENV}
    os.environ.update(
        AWS_ENDPOINT_URL=url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
    )
    try:
        yield S3Endpoint(url)
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
)
