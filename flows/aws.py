"""How this project talks to AWS: one retry policy, one credential source, counted requests.

s3fs (aiobotocore) and boto3 clients both get their retry configuration from
``retry_config`` and their credentials from ``credentials``: the default AWS
chain, or a prefect-aws ``AwsCredentials`` block named in the settings. Every
S3 call made through a ``RequestCounter``'s session is counted by operation, so
a run can say how many LIST and GET requests it cost.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from flows.settings import Settings
from transforms.errors import PipelineError

LIST_OPERATIONS = frozenset({"ListObjectsV2", "ListObjects"})
GET_OPERATIONS = frozenset({"GetObject"})
PUT_OPERATIONS = frozenset({"PutObject", "CopyObject", "CompleteMultipartUpload"})

IAM_ACTION = {
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CopyObject": "s3:PutObject",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
}
"""The IAM action an S3 operation needs, for errors a person can act on."""


class AccessDeniedError(PipelineError):
    """AWS refused a request: the message names the bucket, the key and the IAM action."""


class RequestCounter:
    """S3 API calls by operation (``before-call``) and HTTP attempts (``before-send``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.attempts = 0

    def on_call(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1

    def on_send(self, **_: Any) -> None:
        with self._lock:
            self.attempts += 1

    def add(self, counts: Counter[str]) -> None:
        """Count requests made elsewhere (a worker process) as this counter's own."""
        with self._lock:
            self.attempts += counts.get("http_attempts", 0)
            self.calls.update({k: v for k, v in counts.items() if k != "http_attempts"})

    def snapshot(self) -> Counter[str]:
        """Calls so far, by operation, plus ``http_attempts`` (retries included)."""
        with self._lock:
            counts = Counter(self.calls)
            if self.attempts:
                counts["http_attempts"] = self.attempts
            return counts


def summarise_requests(counts: Counter[str]) -> dict[str, Any]:
    """The request counts of a run as the summary shows them."""
    operations = {k: v for k, v in counts.items() if k != "http_attempts"}
    return {
        "list": sum(v for k, v in operations.items() if k in LIST_OPERATIONS),
        "get": sum(v for k, v in operations.items() if k in GET_OPERATIONS),
        "put": sum(v for k, v in operations.items() if k in PUT_OPERATIONS),
        "other": sum(
            v
            for k, v in operations.items()
            if k not in LIST_OPERATIONS | GET_OPERATIONS | PUT_OPERATIONS
        ),
        "total": sum(operations.values()),
        "http_attempts": counts.get("http_attempts", 0),
        "by_operation": dict(sorted(operations.items())),
    }


def retry_config(settings: Settings) -> dict[str, Any]:
    """botocore ``Config`` arguments for every client: throttling and 5xx retried with backoff."""
    retries = {"mode": settings.s3_retry_mode, "total_max_attempts": settings.s3_max_attempts}
    return {"retries": retries}


def credentials(settings: Settings) -> dict[str, Any]:
    """Explicit credentials from the configured AwsCredentials block; {} = the default chain."""
    if not settings.aws_credentials_block:
        return {}
    from prefect_aws import AwsCredentials  # noqa: PLC0415 - only for users of a block

    block: Any = AwsCredentials.load(settings.aws_credentials_block)
    found: dict[str, Any] = {}
    if block.assume_role_arn:  # The block assumes the role; take the session's credentials.
        frozen = block.get_boto3_session().get_credentials().get_frozen_credentials()
        found["aws_access_key_id"] = frozen.access_key
        found["aws_secret_access_key"] = frozen.secret_key
        found["aws_session_token"] = frozen.token
        block.aws_access_key_id = block.aws_secret_access_key = block.aws_session_token = None
        block.profile_name = None
    if block.aws_access_key_id:
        found["aws_access_key_id"] = block.aws_access_key_id
    if block.aws_secret_access_key:
        found["aws_secret_access_key"] = block.aws_secret_access_key.get_secret_value()
    if block.aws_session_token:
        found["aws_session_token"] = block.aws_session_token
    if block.profile_name:
        found["profile"] = block.profile_name
    if block.region_name:
        found["region_name"] = block.region_name
    endpoint = block.aws_client_parameters.endpoint_url
    if endpoint:
        found["endpoint_url"] = endpoint
    return found


def s3fs_options(settings: Settings, counter: RequestCounter) -> dict[str, Any]:
    """``S3FileSystem`` arguments: counted session, retry config, credentials, fresh listings."""
    creds = credentials(settings)
    from aiobotocore.session import AioSession  # noqa: PLC0415 - only for S3: 0.2 s of each start

    session = AioSession(profile=creds.pop("profile", None))
    session.register("before-call.s3", counter.on_call)
    session.register("before-send.s3", counter.on_send)
    client_kwargs = {k: creds.pop(k) for k in ("region_name", "endpoint_url") if k in creds}
    options: dict[str, Any] = {
        "session": session,
        "config_kwargs": retry_config(settings),
        "client_kwargs": client_kwargs,
        # Listings are read once per run and must be fresh: no cache to go stale.
        "use_listings_cache": False,
        # Each Storage counts its own requests: never share a cached instance.
        "skip_instance_cache": True,
        # A whole-object GET, not HEAD + ranged GETs: one request per log object.
        "max_concurrency": 1,
    }
    if "aws_access_key_id" in creds:
        options["key"] = creds["aws_access_key_id"]
        options["secret"] = creds.get("aws_secret_access_key")
        options["token"] = creds.get("aws_session_token")
    return options


def boto3_client(
    service: str, settings: Settings | None = None, *, region: str | None = None
) -> Any:
    """A boto3 client with the same retry policy and credentials as the s3fs storage."""
    settings = settings or Settings()  # read from the environment
    creds = credentials(settings)
    import boto3  # noqa: PLC0415 - only for AWS calls: 0.1 s of each start
    from botocore.config import Config  # noqa: PLC0415

    session = boto3.Session(profile_name=creds.pop("profile", None))
    endpoint = creds.pop("endpoint_url", None)
    if region:
        creds["region_name"] = region
    return session.client(
        service, config=Config(**retry_config(settings)), endpoint_url=endpoint, **creds
    )


def access_denied(error: PermissionError, bucket: str, key: str, operation: str) -> PipelineError:
    """A refused request as an error that says which permission is missing on what."""
    cause = error.__cause__
    operation = getattr(cause, "operation_name", None) or operation
    action = IAM_ACTION.get(operation, f"s3:{operation}")
    resource = f"arn:aws:s3:::{bucket}" + ("" if action == "s3:ListBucket" else f"/{key}")
    return AccessDeniedError(
        f"access denied: {action} ({operation}) on bucket {bucket!r}, key {key!r}; "
        f"the run's credentials need {action} on {resource}",
        key=f"s3://{bucket}/{key}",
    )


# --- Encryption of what the pipeline writes (issue 7) ------------------------------------


def is_s3(url: str) -> bool:
    return url.startswith(("s3://", "s3a://"))


def storage_options(url: str, settings: Settings, *, writes: bool = False) -> dict[str, Any]:
    """fsspec options for ``url`` outside ``Storage``: retries, credentials, SSE-KMS on writes."""
    if not is_s3(url):
        return {}
    options = s3fs_options(settings, RequestCounter())
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
