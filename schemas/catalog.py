"""The table's catalog entry, derived from its schema: Hive DDL and the Glue ``TableInput``.

Both are built here, purely, from one ``TableSchema`` and one ``Projection`` (in the
manner of aws-sdk-pandas' ``catalog/_definitions.py``): the columns come from
``schemas.derive``, the storage and the table properties from the constants and
functions below, so the DDL a user runs and the table ``register`` creates cannot
drift apart.

Partitions are *projected* (Athena computes them from table properties; nothing
is ever added to the catalog): region as an ``enum`` of the regions the table
holds or is configured for, year/month/day as zero-padded integer ranges. A
partition that the projection does not cover is invisible to Athena, so
``uncovered`` says which ones those would be, for the caller to report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from schemas.cloudtrail import EVENTS, PARTITION_KEYS, SCHEMA_VERSION, TableSchema
from schemas.derive import SCHEMA_VERSION_METADATA_KEY, glue_columns, partition_columns
from schemas.insights import INSIGHTS

TABLES: dict[str, TableSchema] = {EVENTS.name: EVENTS, INSIGHTS.name: INSIGHTS}
"""The tables by kind (``--kind``); a table's folder under the destination has the same name."""

SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

STANDARD_REGIONS: tuple[str, ...] = (
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
)
"""The commercial AWS regions CloudTrail logs in: what an empty table projects."""

OTHER_PARTITION_REGIONS: tuple[str, ...] = (
    "cn-north-1",
    "cn-northwest-1",
    "us-gov-east-1",
    "us-gov-west-1",
)
"""Regions of the China and GovCloud partitions: known, but projected only when present."""

FIRST_CLOUDTRAIL_YEAR = 2013
"""CloudTrail launched in November 2013: no event is older."""

_ATHENA_NAME = re.compile(r"^[a-z0-9_]{1,255}$")
"""A database or table name Athena takes unquoted and Glue stores as given."""

_ENUM_VALUE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
"""A region usable as an enum value and a path segment (no comma, no space, lower case)."""


class CatalogDefinitionError(ValueError):
    """A table that cannot be defined as asked (a bad name, a bad region name)."""


def check_name(name: str, what: str = "table") -> str:
    """``name`` if Athena and Glue take it as it is: lower-case letters, digits, underscores."""
    if not _ATHENA_NAME.match(name):
        raise CatalogDefinitionError(
            f"{what} name {name!r}: use lower-case letters, digits and underscores "
            "(Athena's rule; Glue would lower-case it)"
        )
    return name


@dataclass(frozen=True)
class Projection:
    """The partition values Athena projects: region enum and the year range, inclusive."""

    regions: tuple[str, ...]
    first_year: int
    last_year: int

    def __post_init__(self) -> None:
        bad = [r for r in self.regions if not _ENUM_VALUE.match(r)]
        if bad:
            raise CatalogDefinitionError(f"not a region name usable in a projection: {bad}")
        if not self.regions:
            raise CatalogDefinitionError("a projection needs at least one region")
        if not 0 <= self.first_year <= self.last_year <= 9999:
            raise CatalogDefinitionError(
                f"year range {self.first_year}..{self.last_year} is not four-digit years"
            )

    def merged(self, other: Projection) -> Projection:
        """A projection covering both: catalog updates only ever widen what is visible."""
        return Projection(
            regions=tuple(sorted(set(self.regions) | set(other.regions))),
            first_year=min(self.first_year, other.first_year),
            last_year=max(self.last_year, other.last_year),
        )

    @property
    def partition_count(self) -> int:
        """Partitions a query naming no partition projects (each one a location to list)."""
        return len(self.regions) * (self.last_year - self.first_year + 1) * 12 * 31


def projection_for(regions: Iterable[str], years: Iterable[int], *, this_year: int) -> Projection:
    """The projection covering ``regions`` and the plausible ``years``, through next year.

    With no region at all (an empty table, nothing configured) the standard AWS
    regions are projected, so the table is ready for data. Years run from the
    oldest one present (this year when none) to next year, so the coming New
    Year's data is visible before a registration widens the range. Years before
    CloudTrail existed or after next year are not projected: such events carry a
    bogus ``eventTime``, and ``uncovered`` reports them instead of letting them
    stretch every unfiltered query over centuries of empty partitions.
    """
    wanted = sorted(set(regions)) or list(STANDARD_REGIONS)
    first = max(min({*years, this_year}), FIRST_CLOUDTRAIL_YEAR)
    return Projection(tuple(wanted), first, this_year + 1)


def uncovered(partition: Mapping[str, str], projection: Projection) -> str | None:
    """Why Athena would not see the partition with these key values; None when it would."""
    region, year, month, day = (partition.get(key) for key in PARTITION_KEYS)
    if region not in projection.regions:
        return f"region {region!r} is not in the table's region enum"
    if year is None or not re.fullmatch(r"\d{4}", year):
        return f"year {year!r} is not four digits"
    if not projection.first_year <= int(year) <= projection.last_year:
        return (
            f"year {year} is outside the projected range "
            f"{projection.first_year}..{projection.last_year}"
        )
    if month is None or not re.fullmatch(r"0[1-9]|1[0-2]", month):
        return f"month {month!r} is not 01..12"
    if day is None or not re.fullmatch(r"0[1-9]|[12]\d|3[01]", day):
        return f"day {day!r} is not 01..31"
    return None


def location_template(location: str) -> str:
    """``storage.location.template``: where a partition's files are, as the writer lays them."""
    return location.rstrip("/") + "/" + "/".join(f"{k}=${{{k}}}" for k in PARTITION_KEYS) + "/"


def table_properties(location: str, projection: Projection) -> dict[str, str]:
    """The table properties shared by the DDL and Glue: format, projection, schema version."""
    return {
        "classification": "parquet",
        "parquet.compression": "ZSTD",
        "projection.enabled": "true",
        "projection.region.type": "enum",
        "projection.region.values": ",".join(projection.regions),
        "projection.year.type": "integer",
        "projection.year.range": f"{projection.first_year},{projection.last_year}",
        "projection.year.digits": "4",
        "projection.month.type": "integer",
        "projection.month.range": "1,12",
        "projection.month.digits": "2",
        "projection.day.type": "integer",
        "projection.day.range": "1,31",
        "projection.day.digits": "2",
        "storage.location.template": location_template(location),
        SCHEMA_VERSION_METADATA_KEY: SCHEMA_VERSION,
    }


def projection_of(parameters: Mapping[str, str]) -> Projection | None:
    """The projection a registered table's properties describe; None if they describe none."""
    try:
        first, last = (int(v) for v in parameters["projection.year.range"].split(","))
        regions = tuple(r for r in parameters["projection.region.values"].split(",") if r)
        return Projection(regions, first, last)
    except (KeyError, ValueError):
        return None


def table_location(root: str) -> str:
    """A table's ``LOCATION``: its folder, ending in a slash as Hive and Athena expect."""
    return root.rstrip("/") + "/"


def glue_table_input(
    schema: TableSchema, *, table: str, location: str, projection: Projection
) -> dict[str, Any]:
    """The Glue ``TableInput`` of the table (``CreateTable`` / ``UpdateTable``)."""
    return {
        "Name": check_name(table),
        "Description": f"CloudTrail {schema.name} as partitioned Parquet (cloudtrail-parquet).",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"EXTERNAL": "TRUE", **table_properties(location, projection)},
        "PartitionKeys": [{"Name": n, "Type": t} for n, t in partition_columns()],
        "StorageDescriptor": {
            "Columns": glue_columns(schema.columns),
            "Location": table_location(location),
            "InputFormat": INPUT_FORMAT,
            "OutputFormat": OUTPUT_FORMAT,
            "Compressed": False,
            "StoredAsSubDirectories": False,
            "SerdeInfo": {"SerializationLibrary": SERDE, "Parameters": {}},
        },
    }


def create_table_ddl(
    schema: TableSchema,
    *,
    table: str,
    location: str,
    projection: Projection,
    database: str | None = None,
) -> str:
    """The ``CREATE EXTERNAL TABLE`` statement of the same table, in Hive DDL (Athena's)."""
    name = f"`{check_name(table)}`"
    if database:
        name = f"`{check_name(database, 'database')}`.{name}"
    columns = [
        f"  `{c['Name']}` {c['Type']}"
        + (f" COMMENT {_quote(c['Comment'])}" if "Comment" in c else "")
        for c in glue_columns(schema.columns)
    ]
    partitions = ", ".join(f"`{n}` {t}" for n, t in partition_columns())
    properties = ",\n".join(
        f"  {_quote(k)}={_quote(v)}" for k, v in table_properties(location, projection).items()
    )
    return (
        f"CREATE EXTERNAL TABLE {name} (\n"
        + ",\n".join(columns)
        + "\n)\n"
        + f"PARTITIONED BY ({partitions})\n"
        + f"ROW FORMAT SERDE {_quote(SERDE)}\n"
        + f"STORED AS INPUTFORMAT {_quote(INPUT_FORMAT)}\n"
        + f"OUTPUTFORMAT {_quote(OUTPUT_FORMAT)}\n"
        + f"LOCATION {_quote(table_location(location))}\n"
        + f"TBLPROPERTIES (\n{properties}\n)"
    )


def set_properties_ddl(*, table: str, database: str, location: str, projection: Projection) -> str:
    """``ALTER TABLE … SET TBLPROPERTIES``: the same properties, for an update made in Athena."""
    properties = ", ".join(
        f"{_quote(k)}={_quote(v)}" for k, v in table_properties(location, projection).items()
    )
    name = f"`{check_name(database, 'database')}`.`{check_name(table)}`"
    return f"ALTER TABLE {name} SET TBLPROPERTIES ({properties})"


def _quote(text: str) -> str:
    """A Hive string literal: backslash and single quote escaped."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
