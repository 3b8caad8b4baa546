"""Settings, read once from the environment (prefix ``CTPARQUET_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Knobs of a conversion run; every one has a safe default."""

    model_config = SettingsConfigDict(env_prefix="CTPARQUET_", extra="ignore")

    batch_bytes: int = Field(
        32 * 1024 * 1024,
        description=(
            "Compressed bytes of log objects converted together. Bounds memory "
            "(about 20x this while a batch is decoded) and sets output file size."
        ),
        gt=0,
    )
    batch_objects: int = Field(
        5_000, description="Most log objects in one batch, however small they are.", gt=0
    )
    row_group_rows: int = Field(
        122_880, description="Rows per Parquet row group in written files.", gt=0
    )
    read_concurrency: int = Field(
        16, description="Log objects fetched at once from storage (S3 latency hiding).", gt=0
    )

    # --- Faults and encryption (issue 7) ---------------------------------------------------
    s3_retry_mode: Literal["standard", "adaptive"] = Field(
        "standard",
        description=(
            "botocore retry mode for S3: 'standard' (AWS's recommendation) retries throttling, "
            "5xx and connection errors with jittered exponential backoff; 'adaptive' also "
            "rate-limits the client after throttling (AWS calls it experimental)."
        ),
    )
    s3_max_attempts: int = Field(
        10,
        description="Attempts per S3 request (first try included) on throttling and 5xx.",
        gt=0,
    )
    sse_kms_key_id: str | None = Field(
        None,
        description=(
            "KMS key (id, ARN or alias ARN) for SSE-KMS on every object written under an "
            "s3:// destination. Unset: the bucket's default encryption applies."
        ),
    )
    sse_kms_bucket_key: bool = Field(
        True,
        description="Use an S3 Bucket Key with SSE-KMS (far fewer KMS requests, lower cost).",
    )
