"""Settings, read once from the environment (prefix ``CTPARQUET_``), each field described."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Knobs of a conversion run; every one has a safe default."""

    model_config = SettingsConfigDict(env_prefix="CTPARQUET_", extra="ignore")

    batch_bytes: int = Field(
        default=4 * 1024 * 1024,
        description=(
            "Compressed bytes of log objects converted together, per worker thread. "
            "Bounds memory (measured peak RSS with 4 MiB on the 300,000-event benchmark: "
            "256 MB with one worker, 387 MB with two). The small files that result are "
            "merged by compaction."
        ),
        gt=0,
    )
    batch_objects: int = Field(
        default=5_000, description="Most log objects in one batch, however small they are.", gt=0
    )
    row_group_rows: int = Field(
        default=122_880, description="Rows per Parquet row group in written files.", gt=0
    )
    workers: int | None = Field(
        default=None,
        description=(
            "Threads converting an ingest run's batches in parallel. Unset: one per core "
            "this process may use (its CPU affinity) when more than one batch is pending, "
            "else 1. Each writes a partition only under its lease, so de-duplication sees "
            "every write."
        ),
        gt=0,
    )
    read_concurrency: int = Field(
        default=16,
        description="Log objects fetched at once from storage (S3 latency hiding).",
        gt=0,
    )

    lookback_days: int = Field(
        default=2,
        description=(
            "Delivery-date folders an ingest run lists: today and the days before it "
            "(2 = today and yesterday). CloudTrail's folder date is the delivery date, and "
            "late deliveries land in the current folder, so a short window sees every new "
            "object. 0 lists every delivery day under the source (a first catch-up run)."
        ),
        ge=0,
    )
    settle_minutes: int = Field(
        default=60,
        description=(
            "How long after its name's time (or its upload) an object must be before the "
            "listing mark moves past it, and how long after midnight UTC a day folder is "
            "taken as closed. Objects younger than this are re-listed (not re-read) next run."
        ),
        ge=0,
    )
    max_read_attempts: int = Field(
        default=3,
        description=(
            "Runs that try to read a log object before it is quarantined as unreadable (for "
            "`ctparquet redrive`). Until then its day folder is pending: every ingest lists "
            "it, whatever the look-back window."
        ),
        ge=1,
    )
    discovery_depth: int = Field(
        default=3,
        description=(
            "Folder levels searched for AWSLogs/ when the source is above it (a trail's "
            "custom S3 key prefix); one delimiter listing per folder visited."
        ),
        ge=0,
    )

    s3_retry_mode: Literal["standard", "adaptive"] = Field(
        default="standard",
        description=(
            "botocore retry mode for every S3 call (s3fs and boto3 alike): 'standard' (AWS's "
            "recommendation) retries throttling, 5xx and connection errors with jittered "
            "exponential backoff; 'adaptive' also rate-limits the client after throttling."
        ),
    )
    s3_max_attempts: int = Field(
        default=10,
        description="Attempts per S3 request (first try included) on throttling and 5xx.",
        gt=0,
    )
    aws_credentials_block: str | None = Field(
        default=None,
        description=(
            "Name of a prefect-aws AwsCredentials block to use instead of the default AWS "
            "credential chain (environment, profile, instance or task role)."
        ),
    )
    aws_profile: str | None = Field(
        default=None,
        description=(
            "AWS profile (~/.aws/config) for every client, s3fs and boto3 alike (`--profile`); "
            "it wins over keys in the environment, as the AWS CLI's --profile does."
        ),
    )
    aws_region: str | None = Field(
        default=None,
        description="AWS region of every client, s3fs and boto3 alike (`--region`).",
    )

    lock_ttl_seconds: float = Field(
        default=300.0,
        description=(
            "Life of a lock on a table partition while a batch writes it; a lock left by a "
            "killed run is taken over after this long. Must exceed 4/3 of the S3 retry "
            "budget (111 s for 10 attempts): no PUT is made under a shorter lease."
        ),
        gt=0,
    )
    lock_wait_seconds: float = Field(
        default=900.0,
        description="Longest wait for a partition lock another run holds before failing.",
        gt=0,
    )

    backfill_concurrency: int = Field(
        default=8,
        description="Backfill units (account, region, day) converted at the same time.",
        gt=0,
    )
    dask_address: str | None = Field(
        default=None,
        description=(
            "Dask scheduler the backfill runs its units on (tcp://host:8786), or 'local' for "
            "a distributed.LocalCluster on this machine; unset runs them in this process."
        ),
    )
    dask_local_workers: int = Field(
        default=2,
        description="Worker processes of the LocalCluster started for --dask local.",
        gt=0,
    )
    glue_database: str | None = Field(
        default=None,
        description=(
            "Glue database of the tables. With glue_table set, every ingest run registers "
            "the tables it wrote when missing, outdated or not projecting a region it wrote."
        ),
    )
    glue_table: str | None = Field(default=None, description="Glue table name of the events table.")
    glue_insights_table: str | None = Field(
        default=None,
        description="Glue table name of the Insights table (default: <glue_table>_insights).",
    )
    glue_regions: list[str] = Field(
        default_factory=list,
        description=(
            "Regions to project besides those present (JSON list), e.g. the regions a trail "
            "logs that have no events yet."
        ),
    )
    athena_workgroup: str | None = Field(
        default=None,
        description=(
            "Register by running DDL in this Athena workgroup instead of with Glue's API "
            "(for accounts that allow catalog changes only through Athena)."
        ),
    )
    athena_output: str | None = Field(
        default=None,
        description="s3:// URL for Athena's query results, if the workgroup sets none.",
    )

    # --- Encryption of what the pipeline writes (issue 7) ---------------------------------
    sse_kms_key_id: str | None = Field(
        default=None,
        description=(
            "KMS key (id, ARN or alias ARN) for SSE-KMS on every object written under an "
            "s3:// destination. Unset: the bucket's default encryption applies."
        ),
    )
    sse_kms_bucket_key: bool = Field(
        default=True,
        description="Use an S3 Bucket Key with SSE-KMS (far fewer KMS requests, lower cost).",
    )
