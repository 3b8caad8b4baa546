"""How this project talks to AWS: one retry policy, one credential source, counted requests.

s3fs (aiobotocore) and boto3 clients both get their retry configuration from
``retry_config`` and their credentials from ``credentials``: the default AWS
chain, or a prefect-aws ``AwsCredentials`` block named in the settings. Every
S3 call made through a ``RequestCounter``'s session is counted by operation, so
a run can say how many LIST and GET requests it cost.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import uuid
from collections import Counter
from typing import Any

from flows.settings import Settings
from transforms.errors import PipelineError

log = logging.getLogger(__name__)

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


BACKOFF_CAP_SECONDS = 20.0
"""botocore's cap on one retry's sleep (``botocore.retries.standard.ExponentialBackoff``)."""


def retry_budget_seconds(settings: Settings) -> float:
    """The longest botocore may sleep between the attempts of one request.

    Standard and adaptive modes sleep up to ``min(2 ** (n - 1), 20)`` seconds before
    retry n (throttling scale; 5xx sleep less): 111 s for 10 attempts. Adaptive mode's
    client-side rate limiting can add more under sustained throttling.
    """
    retries = range(1, settings.s3_max_attempts)
    return float(sum(min(2.0 ** (n - 1), BACKOFF_CAP_SECONDS) for n in retries))


def credentials(settings: Settings) -> dict[str, Any]:
    """Explicit credentials from the configured AwsCredentials block; {} = the default chain.

    A block that assumes a role gives no keys here: its role's credentials are refreshable
    and set on each session (``_assumed_role``), so a long run outlives their expiry.
    """
    if not settings.aws_credentials_block:
        return {}
    block = credentials_block(settings.aws_credentials_block)
    found: dict[str, Any] = {}
    if block.region_name:
        found["region_name"] = block.region_name
    endpoint = block.aws_client_parameters.endpoint_url
    if endpoint:
        found["endpoint_url"] = endpoint
    if block.assume_role_arn:
        return found
    if block.aws_access_key_id:
        found["aws_access_key_id"] = block.aws_access_key_id
    if block.aws_secret_access_key:
        found["aws_secret_access_key"] = block.aws_secret_access_key.get_secret_value()
    if block.aws_session_token:
        found["aws_session_token"] = block.aws_session_token
    if block.profile_name:
        found["profile"] = block.profile_name
    return found


@functools.cache
def credentials_block(name: str) -> Any:
    """The prefect-aws ``AwsCredentials`` block ``name``, loaded once per process: every
    ``Storage`` and client asks for it, once per batch and worker (``forget_credentials``)."""
    from prefect_aws import AwsCredentials  # noqa: PLC0415 - only for users of a block

    return AwsCredentials.load(name)


@functools.cache
def _assumed_role(name: str) -> Any:
    """Refreshable credentials of the role the block ``name`` assumes (None: it assumes none).

    One per process, shared by every client: STS is asked again only when the role's
    credentials come near their expiry (botocore refreshes 15 minutes before it).
    """
    block = credentials_block(name)
    if not block.assume_role_arn:
        return None
    from botocore.credentials import DeferredRefreshableCredentials  # noqa: PLC0415

    return DeferredRefreshableCredentials(
        refresh_using=functools.partial(_assume_role, block), method="assume-role"
    )


def _assume_role(block: Any) -> dict[str, str]:
    """Ask STS for the block's role, with the block's own keys or profile (or the default
    chain): the credentials metadata botocore's refreshable credentials take."""
    import boto3  # noqa: PLC0415

    secret = block.aws_secret_access_key
    base = boto3.Session(
        aws_access_key_id=block.aws_access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        aws_session_token=block.aws_session_token,
        profile_name=block.profile_name,
        region_name=block.region_name,
    )
    request = {"RoleArn": block.assume_role_arn, **block.assume_role_kwargs.get_params_override()}
    request.setdefault("RoleSessionName", f"ctparquet-{uuid.uuid4().hex[:8]}")
    found = base.client("sts").assume_role(**request)["Credentials"]
    log.info("assumed role %s until %s", block.assume_role_arn, found["Expiration"])
    return {
        "access_key": found["AccessKeyId"],
        "secret_key": found["SecretAccessKey"],
        "token": found["SessionToken"],
        "expiry_time": found["Expiration"].isoformat(),
    }


def role_credentials(settings: Settings) -> Any:
    """The refreshable credentials of the role the configured block assumes, or None."""
    if not settings.aws_credentials_block:
        return None
    return _assumed_role(settings.aws_credentials_block)


def forget_credentials() -> None:
    """Load the credentials block (and assume its role) afresh on next use."""
    credentials_block.cache_clear()
    _assumed_role.cache_clear()
    _async_assumed_role.cache_clear()


@functools.cache
def _async_assumed_role(name: str) -> Any:
    """``_assumed_role`` for aiobotocore (s3fs): the same refresh, awaited off the loop."""
    synchronous = _assumed_role(name)
    if synchronous is None:
        return None
    from aiobotocore.credentials import AioDeferredRefreshableCredentials  # noqa: PLC0415

    def current() -> dict[str, str]:
        frozen = synchronous.get_frozen_credentials()  # refreshed first if near its expiry
        return {
            "access_key": frozen.access_key,
            "secret_key": frozen.secret_key,
            "token": frozen.token,
            "expiry_time": synchronous._expiry_time.isoformat(),
        }

    async def refresh() -> dict[str, str]:
        return await asyncio.to_thread(current)  # STS over HTTP: not on the event loop

    return AioDeferredRefreshableCredentials(refresh_using=refresh, method="assume-role")


def s3fs_options(settings: Settings, counter: RequestCounter) -> dict[str, Any]:
    """``S3FileSystem`` arguments: counted session, retry config, credentials, fresh listings."""
    creds = {**credentials(settings), **chosen_by_user(settings)}
    from aiobotocore.session import AioSession  # noqa: PLC0415 - only for S3: 0.2 s of each start

    session = AioSession(profile=creds.pop("profile", None))
    if settings.aws_credentials_block:
        role = _async_assumed_role(settings.aws_credentials_block)
        if role is not None:
            session._credentials = role
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
    creds = {**credentials(settings), **chosen_by_user(settings)}
    import boto3  # noqa: PLC0415 - only for AWS calls: 0.1 s of each start
    from botocore.config import Config  # noqa: PLC0415

    session = boto3.Session(profile_name=creds.pop("profile", None))
    if settings.aws_credentials_block:
        role = _assumed_role(settings.aws_credentials_block)
        if role is not None:
            session._session._credentials = role
    endpoint = creds.pop("endpoint_url", None)
    if region:
        creds["region_name"] = region
    return session.client(
        service, config=Config(**retry_config(settings)), endpoint_url=endpoint, **creds
    )


def chosen_by_user(settings: Settings) -> dict[str, Any]:
    """The profile and region the user named (``--profile``, ``--region``): over the block's."""
    chosen: dict[str, Any] = {}
    if settings.aws_profile:
        chosen["profile"] = settings.aws_profile
    if settings.aws_region:
        chosen["region_name"] = settings.aws_region
    return chosen


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
