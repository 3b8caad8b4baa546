"""The catalog adapter: the table's DDL, and its Glue entry created or brought up to date.

Everything the catalog holds is computed by ``schemas.catalog`` from the schema
and a projection; this module only finds what the projection must cover (the
partitions present under the destination, the regions asked for, the table
already registered) and talks to Glue with boto3. Registration is idempotent: a
second call finds the table equal to the definition and changes nothing. An
update only ever widens the projection, so no call can hide data another made
visible; partitions the projection still would not cover are reported.
"""

from __future__ import annotations

import logging
import posixpath
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, Literal

from flows.aws import boto3_client
from flows.report import RunSummary
from flows.settings import Settings
from flows.storage import Storage
from schemas.catalog import (
    OTHER_PARTITION_REGIONS,
    STANDARD_REGIONS,
    TABLES,
    CatalogDefinitionError,
    Projection,
    check_name,
    create_table_ddl,
    glue_table_input,
    projection_for,
    projection_of,
    set_properties_ddl,
    uncovered,
)
from schemas.cloudtrail import PARTITION_KEYS, SCHEMA_VERSION, TableSchema
from schemas.derive import SCHEMA_VERSION_METADATA_KEY
from schemas.hunts import load_pack
from transforms.errors import PipelineError, Problem
from transforms.keys import REGION_NAME

log = logging.getLogger(__name__)

Action = Literal["created", "updated", "unchanged"]


class RegistrationError(PipelineError):
    """The table cannot be registered as asked (bad region, not S3, someone else's table)."""


@dataclass
class PartitionScan:
    """The partition folders found under a table's root, and files outside any of them."""

    partitions: list[dict[str, str]] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)

    @property
    def regions(self) -> set[str]:
        return {p["region"] for p in self.partitions if REGION_NAME.match(p.get("region", ""))}

    @property
    def years(self) -> set[int]:
        return {int(p["year"]) for p in self.partitions if p.get("year", "").isdigit()}


@dataclass
class Registration:
    """What ``register`` did, for the CLI summary and the ingest run's."""

    database: str
    table: str
    kind: str
    location: str
    action: Action
    database_created: bool
    projection: Projection
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    via: str = "glue"
    """``glue`` (its API) or ``athena`` (DDL run in a workgroup)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "table": self.table,
            "kind": self.kind,
            "location": self.location,
            "action": self.action,
            "via": self.via,
            "database_created": self.database_created,
            "regions": list(self.projection.regions),
            "years": [self.projection.first_year, self.projection.last_year],
            "projected_partitions": self.projection.partition_count,
            "problems_count": len(self.problems),
            "problems": [p.as_dict() for p in self.problems],
            "warnings": self.warnings,
        }


def table_schema(kind: str) -> TableSchema:
    try:
        return TABLES[kind]
    except KeyError:
        raise RegistrationError(f"unknown table kind {kind!r}: one of {sorted(TABLES)}") from None


def location_of(dest: Storage, schema: TableSchema) -> str:
    """The table's location as an engine names it: ``s3://…`` or a ``file:`` URI."""
    root = dest.path(schema.name)
    return PurePosixPath(root).as_uri() if dest.is_local else dest.url(root)


def scan_partitions(dest: Storage, schema: TableSchema) -> PartitionScan:
    """Every ``region=/year=/month=/day=`` folder holding a Parquet file under the table."""
    root = dest.path(schema.name)
    scan = PartitionScan()
    if not dest.exists(root):
        return scan
    seen: set[str] = set()
    for stored in dest.list_files(root):
        folder, name = posixpath.split(posixpath.relpath(stored.path, root))
        if name.startswith((".", "_")) or folder.startswith((".", "_")):
            continue  # hidden and staging files: Hive and Athena skip them too
        parts = folder.split("/") if folder else []
        keys = [p.split("=", 1)[0] for p in parts]
        if keys != list(PARTITION_KEYS):
            scan.strays.append(dest.url(stored.path))
        elif folder not in seen:
            seen.add(folder)
            scan.partitions.append(dict(p.split("=", 1) for p in parts))
            scan.urls.append(dest.url(posixpath.join(root, folder)))
    return scan


def check_regions(regions: Iterable[str]) -> list[str]:
    """Warnings for configured or present regions AWS does not list; errors for unusable ones."""
    warnings = []
    for region in regions:
        if not REGION_NAME.match(region):
            raise RegistrationError(
                f"{region!r} is not a region name (lower-case letters, digits and dashes)"
            )
        if region not in STANDARD_REGIONS and region not in OTHER_PARTITION_REGIONS:
            warnings.append(f"region {region!r} is not a known AWS region; projected all the same")
    return warnings


def plan_table(
    dest: Storage,
    kind: str,
    *,
    regions: Iterable[str] = (),
    this_year: int | None = None,
) -> tuple[TableSchema, Projection, PartitionScan, list[str]]:
    """The schema, the projection covering what is present and asked for, and warnings."""
    schema = table_schema(kind)
    configured = list(regions)
    scan = scan_partitions(dest, schema)
    warnings = check_regions(sorted(set(configured) | scan.regions))
    year = this_year or datetime.now(UTC).year
    projection = projection_for(scan.regions | set(configured), scan.years, this_year=year)
    return schema, projection, scan, warnings


def coverage_problems(scan: PartitionScan, projection: Projection) -> list[Problem]:
    """Partitions and files Athena would not see through ``projection``."""
    problems = [
        Problem(url, f"not covered by the table's partition projection: {reason}")
        for url, partition in zip(scan.urls, scan.partitions, strict=True)
        if (reason := uncovered(partition, projection))
    ]
    problems += [
        Problem(url, "file outside any region=/year=/month=/day= folder: invisible to Athena")
        for url in scan.strays
    ]
    return problems


def render_ddl(
    dest_url: str,
    *,
    table: str,
    database: str | None = None,
    kind: str = "events",
    regions: Iterable[str] = (),
    this_year: int | None = None,
) -> tuple[str, list[Problem], list[str]]:
    """The CREATE EXTERNAL TABLE statement for the table under ``dest_url``."""
    dest = Storage(dest_url)
    schema, projection, scan, warnings = plan_table(
        dest, kind, regions=regions, this_year=this_year
    )
    ddl = create_table_ddl(
        schema,
        table=table,
        database=database,
        location=location_of(dest, schema),
        projection=projection,
    )
    return ddl, coverage_problems(scan, projection), warnings


def register_table(
    dest_url: str,
    *,
    database: str,
    table: str,
    kind: str = "events",
    regions: Iterable[str] = (),
    glue: Any = None,
    this_year: int | None = None,
    athena: AthenaDDL | None = None,
) -> Registration:
    """Create or update the Glue database and table for the table under ``dest_url``.

    With ``athena``, the changes are made by running the DDL in an Athena workgroup
    (``StartQueryExecution``) instead of Glue's write API; Glue is only read.
    """
    dest = Storage(dest_url)
    if dest.is_local:
        raise RegistrationError(
            "Athena reads tables from S3: give an s3:// destination (`ctparquet ddl` prints "
            "the DDL of a local table for other engines)",
            key=dest_url,
        )
    try:
        check_name(database, "database")
        check_name(table)
        schema, wanted, scan, warnings = plan_table(
            dest, kind, regions=regions, this_year=this_year
        )
    except CatalogDefinitionError as error:
        raise RegistrationError(str(error), key=dest_url) from None
    location = location_of(dest, schema)
    glue = glue or _glue_client()
    database_created = _ensure_database(glue, database, athena)
    existing = _get_table(glue, database, table)
    projection = wanted
    if existing is not None:
        _check_ours(existing, database, table, location)
        registered = projection_of(existing.get("Parameters", {}))
        if registered is not None:
            projection = wanted.merged(registered)
    table_input = glue_table_input(schema, table=table, location=location, projection=projection)
    action: Action
    if existing is None:
        if athena:
            athena.run(
                create_table_ddl(
                    schema, table=table, database=database, location=location, projection=projection
                ),
                database,
            )
        else:
            glue.create_table(DatabaseName=database, TableInput=table_input)
        action = "created"
    elif _differs(existing, table_input):
        if athena:
            _check_only_properties_differ(existing, table_input, database, table)
            athena.run(
                set_properties_ddl(
                    table=table, database=database, location=location, projection=projection
                ),
                database,
            )
        else:
            parameters = {**existing.get("Parameters", {}), **table_input["Parameters"]}
            glue.update_table(
                DatabaseName=database, TableInput={**table_input, "Parameters": parameters}
            )
        action = "updated"
    else:
        action = "unchanged"
    log.info("Glue table %s.%s %s (%s)", database, table, action, location)
    return Registration(
        database=database,
        table=table,
        kind=schema.name,
        location=location,
        action=action,
        database_created=database_created,
        projection=projection,
        problems=coverage_problems(scan, projection),
        warnings=warnings,
        via="athena" if athena else "glue",
    )


def needs_registration(
    glue: Any, database: str, table: str, partitions: Iterable[str]
) -> str | None:
    """Why the ingest run must register the table: missing, outdated, or not covering
    a partition it wrote (``region=…/year=…/month=…/day=…`` paths); None when current."""
    existing = _get_table(glue, database, table)
    if existing is None:
        return "table missing"
    parameters = existing.get("Parameters", {})
    if parameters.get(SCHEMA_VERSION_METADATA_KEY) != SCHEMA_VERSION:
        return "schema version changed"
    projection = projection_of(parameters)
    if projection is None:
        return "table has no partition projection"
    for path in partitions:
        values = dict(part.split("=", 1) for part in path.split("/"))
        if uncovered(values, projection):
            return f"projection does not cover {path}"
    return None


class AthenaDDL:
    """Runs DDL in an Athena workgroup and waits for it: for accounts that allow catalog
    changes only through Athena (its workgroup's permissions and query history)."""

    def __init__(
        self,
        workgroup: str,
        *,
        output: str | None = None,
        client: Any = None,
        timeout: float = 300.0,
    ) -> None:
        self.workgroup, self.output, self.timeout = workgroup, output, timeout
        self.client = client or boto3_client("athena")
        self.statements: list[str] = []
        """The statements run, in order (for the summary)."""

    def run(self, statement: str, database: str | None) -> None:
        from botocore.exceptions import ClientError  # noqa: PLC0415 - botocore: only for AWS

        request: dict[str, Any] = {"QueryString": statement, "WorkGroup": self.workgroup}
        if database:
            request["QueryExecutionContext"] = {"Database": database}
        if self.output:
            request["ResultConfiguration"] = {"OutputLocation": self.output}
        try:
            query_id = self.client.start_query_execution(**request)["QueryExecutionId"]
        except ClientError as error:
            raise RegistrationError(f"Athena refused the DDL: {error}") from None
        deadline = time.monotonic() + self.timeout
        while True:
            status = self.client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"][
                "Status"
            ]
            if status["State"] == "SUCCEEDED":
                self.statements.append(statement)
                return
            if status["State"] in ("FAILED", "CANCELLED"):
                reason = status.get("StateChangeReason", status["State"])
                raise RegistrationError(f"Athena query {query_id} {status['State']}: {reason}")
            if time.monotonic() > deadline:
                raise RegistrationError(f"Athena query {query_id} still running after timeout")
            time.sleep(0.5)


def register_after_ingest(
    dest_url: str, settings: Settings, summary: RunSummary, *, glue: Any = None
) -> tuple[list[Registration], list[Problem]]:
    """Register the tables an ingest run wrote into, where Glue is configured and needs it.

    Glue is asked once per table; the full registration (a listing of the table's
    partitions) runs only when the table is missing, of another schema version, or
    does not project a partition the run wrote. A failure is reported as a problem:
    the data is in, and the next run or ``ctparquet register`` tries again.
    """
    if not (settings.glue_database and settings.glue_table):
        return [], []
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - only with Glue

    database = settings.glue_database
    tables = {
        "events": (settings.glue_table, summary.partitions),
        "insights": (
            settings.glue_insights_table or f"{settings.glue_table}_insights",
            summary.insight_partitions,
        ),
    }
    registrations: list[Registration] = []
    problems: list[Problem] = []
    athena = None
    for kind, (table, written) in tables.items():
        if kind == "insights" and not written:
            continue  # no Insights table until there are Insights events
        try:
            glue = glue or _glue_client(settings)
            if settings.athena_workgroup and athena is None:
                athena = AthenaDDL(
                    settings.athena_workgroup,
                    output=settings.athena_output,
                    client=boto3_client("athena", settings),
                )
            reason = needs_registration(glue, database, table, written)
            if reason is None:
                continue
            log.info("registering %s.%s: %s", database, table, reason)
            done = register_table(
                dest_url,
                database=database,
                table=table,
                kind=kind,
                regions=settings.glue_regions,
                glue=glue,
                athena=athena,
            )
        except (PipelineError, BotoCoreError, ClientError) as error:
            problems.append(Problem(f"glue:{database}.{table}", f"registration failed: {error}"))
            continue
        registrations.append(done)
        problems.extend(done.problems)
    return registrations, problems


def _glue_client(settings: Settings | None = None) -> Any:
    """Glue with the run's credentials (``CTPARQUET_AWS_CREDENTIALS_BLOCK``) and retries."""
    return boto3_client("glue", settings)


def _ensure_database(glue: Any, database: str, athena: AthenaDDL | None = None) -> bool:
    try:
        glue.get_database(Name=database)
        return False
    except glue.exceptions.EntityNotFoundException:
        pass
    if athena:
        athena.run(f"CREATE DATABASE IF NOT EXISTS `{database}`", None)
        return True
    try:
        description = "CloudTrail tables (cloudtrail-parquet)"
        glue.create_database(DatabaseInput={"Name": database, "Description": description})
    except glue.exceptions.AlreadyExistsException:
        return False  # created meanwhile by a concurrent run
    return True


def _get_table(glue: Any, database: str, table: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = glue.get_table(DatabaseName=database, Name=table)["Table"]
    except glue.exceptions.EntityNotFoundException:
        return None
    return found


def _check_ours(existing: dict[str, Any], database: str, table: str, location: str) -> None:
    """Refuse to overwrite a table this project did not create, or one over other data."""
    where = f"{database}.{table}"
    if SCHEMA_VERSION_METADATA_KEY not in existing.get("Parameters", {}):
        raise RegistrationError(
            f"Glue table {where} exists and was not created by cloudtrail-parquet; "
            "choose another --table or drop it first"
        )
    registered = existing.get("StorageDescriptor", {}).get("Location", "").rstrip("/")
    if registered != location.rstrip("/"):
        raise RegistrationError(
            f"Glue table {where} reads {registered}, not {location}; choose another --table "
            "or drop it first"
        )


def _check_only_properties_differ(
    existing: dict[str, Any], wanted: dict[str, Any], database: str, table: str
) -> None:
    """Athena DDL can widen a table's properties in place, not change its columns safely."""
    without = {k: v for k, v in wanted.items() if k != "Parameters"}
    if _differs(existing, without):
        raise RegistrationError(
            f"the columns or storage of {database}.{table} differ from this version's: update "
            "it through Glue (register without --athena-workgroup) or drop it and register again"
        )


def _differs(existing: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Does the registered table differ from the definition in anything the definition sets?"""
    for key, value in wanted.items():
        if key == "Parameters":
            have = existing.get("Parameters", {})
            if any(have.get(k) != v for k, v in value.items()):
                return True
        elif key == "StorageDescriptor":
            have = existing.get("StorageDescriptor", {})
            if any(have.get(k) != v for k, v in value.items()):
                return True
        elif existing.get(key) != value:
            return True
    return False


# --- The hunting pack as Athena named queries (issue 14) ------------------------------


def save_named_queries(
    *, workgroup: str, database: str, table: str, athena: Any = None
) -> dict[str, list[str]]:
    """Save every question of the hunting pack as an Athena named query in ``workgroup``.

    Idempotent: a query is found (``ListNamedQueries``, ``GetNamedQuery``) by its name
    (``<table>/<question>``) and database,
    left alone when its text and description are current and updated in place
    (``UpdateNamedQuery``) when they changed. The SQL reads ``database.table``.
    """
    client = athena or boto3_client("athena")
    existing: dict[tuple[str, str], dict[str, Any]] = {}
    for page in client.get_paginator("list_named_queries").paginate(WorkGroup=workgroup):
        for query_id in page.get("NamedQueryIds", []):
            # One GetNamedQuery per ID, not BatchGetNamedQuery: moto has only the former, and a
            # workgroup holds tens of saved queries, not thousands.
            query = client.get_named_query(NamedQueryId=query_id)["NamedQuery"]
            existing[(query["Name"], query.get("Database", ""))] = query
    done: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": []}
    for hunt in load_pack():
        name = f"{table}/{hunt.name}"
        text = _TABLE_NAME.sub(f'"{database}"."{table}"', hunt.sql)
        description = (
            f"{hunt.title} [{hunt.severity}; {', '.join(hunt.techniques)}] "
            f"(cloudtrail-parquet hunting pack)"
        )[:1024]
        have = existing.get((name, database))
        if have is None:
            client.create_named_query(
                Name=name,
                Database=database,
                QueryString=text,
                Description=description,
                WorkGroup=workgroup,
            )
            done["created"].append(hunt.name)
        elif have.get("QueryString") != text or have.get("Description") != description:
            client.update_named_query(
                NamedQueryId=have["NamedQueryId"],
                Name=name,
                Description=description,
                QueryString=text,
            )
            done["updated"].append(hunt.name)
        else:
            done["unchanged"].append(hunt.name)
    log.info(
        "named queries in %s: %d created, %d updated, %d unchanged",
        workgroup,
        len(done["created"]),
        len(done["updated"]),
        len(done["unchanged"]),
    )
    return done


_TABLE_NAME = re.compile(r"\bcloudtrail_logs\b")
