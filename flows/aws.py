"""How the pipeline's S3 filesystems behave: retries and server-side encryption, set once.

Every ``s3://`` storage gets botocore's retry mode (standard by default, as AWS
recommends: jittered exponential backoff on throttling, 5xx and dropped
connections) with enough attempts to ride out a burst of SlowDown. A destination
also gets SSE-KMS on every object written when a key is configured. Local folders
take no options.
"""

from __future__ import annotations

from typing import Any

from flows.settings import Settings

_S3_SCHEMES = ("s3://", "s3a://")


def is_s3(url: str) -> bool:
    return url.startswith(_S3_SCHEMES)


def storage_options(url: str, settings: Settings, *, writes: bool = False) -> dict[str, Any]:
    """s3fs options for ``url``: retries always, SSE-KMS when ``writes`` and a key is set."""
    if not is_s3(url):
        return {}
    options: dict[str, Any] = {
        "config_kwargs": {
            "retries": {"mode": settings.s3_retry_mode, "max_attempts": settings.s3_max_attempts}
        }
    }
    if writes and settings.sse_kms_key_id:
        options["s3_additional_kwargs"] = sse_kms_arguments(settings)
    return options


def sse_kms_arguments(settings: Settings) -> dict[str, Any]:
    """The PutObject/CopyObject/CreateMultipartUpload parameters that ask for SSE-KMS."""
    arguments: dict[str, Any] = {
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": settings.sse_kms_key_id,
    }
    if settings.sse_kms_bucket_key:
        arguments["BucketKeyEnabled"] = True
    return arguments
