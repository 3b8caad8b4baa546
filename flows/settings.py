"""Settings, read once from the environment (prefix ``CTPARQUET_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Knobs of a conversion run; every one has a safe default."""

    model_config = SettingsConfigDict(env_prefix="CTPARQUET_", extra="ignore")

    batch_bytes: int = Field(
        4 * 1024 * 1024,
        description=(
            "Compressed bytes of log objects converted together. Bounds memory (measured "
            "peak RSS on 200k events: 4 MiB -> 0.58 GB, 8 MiB -> 0.70 GB, 32 MiB -> "
            "1.66 GB). The small files that result are merged by compaction."
        ),
        gt=0,
    )
    batch_objects: int = Field(
        5_000, description="Most log objects in one batch, however small they are.", gt=0
    )
    row_group_rows: int = Field(
        122_880, description="Rows per Parquet row group in written files.", gt=0
    )
    workers: int = Field(
        1,
        description=(
            "Processes decoding batches in parallel (use the machine's cores). Writing "
            "stays in one process, batch after batch, so de-duplication sees every write."
        ),
        gt=0,
    )
    read_concurrency: int = Field(
        16, description="Log objects fetched at once from storage (S3 latency hiding).", gt=0
    )
    glue_database: str | None = Field(
        None,
        description=(
            "Glue database of the tables. With glue_table set, every ingest run registers "
            "the tables it wrote when missing, outdated or not projecting a region it wrote."
        ),
    )
    glue_table: str | None = Field(None, description="Glue table name of the events table.")
    glue_insights_table: str | None = Field(
        None, description="Glue table name of the Insights table (default: <glue_table>_insights)."
    )
    glue_regions: list[str] = Field(
        default_factory=list,
        description=(
            "Regions to project besides those present (JSON list), e.g. the regions a trail "
            "logs that have no events yet."
        ),
    )
    athena_workgroup: str | None = Field(
        None,
        description=(
            "Register by running DDL in this Athena workgroup instead of with Glue's API "
            "(for accounts that allow catalog changes only through Athena)."
        ),
    )
    athena_output: str | None = Field(
        None, description="s3:// URL for Athena's query results, if the workgroup sets none."
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
