"""Views of the one schema: Arrow, Polars, Hive/Athena types and Glue columns.

Each view is a pure recursive function over ``schemas.cloudtrail``, in the manner
of aws-sdk-pandas' ``_data_types``: one type mapping per target, nothing restated.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pyarrow as pa

from schemas.cloudtrail import (
    COLUMNS,
    PARTITION_KEYS,
    SCHEMA_VERSION,
    ArrayOf,
    Field,
    FieldType,
    JsonText,
    Struct,
    Text,
    Timestamp,
)

SCHEMA_VERSION_METADATA_KEY = "cloudtrail_parquet.schema_version"


def arrow_type(field_type: FieldType) -> pa.DataType:
    """The Arrow type of a field: strings, UTC microsecond timestamps, structs, lists."""
    if isinstance(field_type, Text | JsonText):
        return pa.string()
    if isinstance(field_type, Timestamp):
        # Microseconds: read by Athena engine v3 and Hive (no nanoseconds, no unsigned).
        return pa.timestamp("us", tz="UTC")
    if isinstance(field_type, Struct):
        return pa.struct([arrow_field(child) for child in field_type.fields])
    if isinstance(field_type, ArrayOf):
        return pa.list_(pa.field("element", arrow_type(field_type.element)))
    raise TypeError(f"no Arrow type for {field_type!r}")


def arrow_field(field: Field) -> pa.Field:
    return pa.field(field.name, arrow_type(field.type), nullable=True)


def arrow_schema(fields: tuple[Field, ...] = COLUMNS) -> pa.Schema:
    """The Arrow schema of a Parquet file of the events table (partition keys excluded)."""
    return pa.schema(
        [arrow_field(field) for field in fields],
        metadata={SCHEMA_VERSION_METADATA_KEY: SCHEMA_VERSION},
    )


def polars_schema(fields: tuple[Field, ...] = COLUMNS) -> pl.Schema:
    """The Polars schema of a frame of events (partition keys excluded)."""
    empty = pl.from_arrow(arrow_schema(fields).empty_table())
    assert isinstance(empty, pl.DataFrame)
    return empty.schema


def hive_type(field_type: FieldType) -> str:
    """The Hive/Athena DDL type, lower case, as Glue stores it."""
    if isinstance(field_type, Text | JsonText):
        return "string"
    if isinstance(field_type, Timestamp):
        return "timestamp"
    if isinstance(field_type, Struct):
        members = ",".join(f"{child.name}:{hive_type(child.type)}" for child in field_type.fields)
        return f"struct<{members}>"
    if isinstance(field_type, ArrayOf):
        return f"array<{hive_type(field_type.element)}>"
    raise TypeError(f"no Hive type for {field_type!r}")


def hive_columns(fields: tuple[Field, ...] = COLUMNS) -> list[tuple[str, str]]:
    """(name, Hive type) of every data column, in file order."""
    return [(field.name, hive_type(field.type)) for field in fields]


def partition_columns() -> list[tuple[str, str]]:
    """(name, Hive type) of the partition keys: all strings, as on the standard table."""
    return [(key, "string") for key in PARTITION_KEYS]


def glue_columns(fields: tuple[Field, ...] = COLUMNS) -> list[dict[str, Any]]:
    """Glue ``StorageDescriptor.Columns`` entries, with each field's description."""
    columns: list[dict[str, Any]] = []
    for field in fields:
        column: dict[str, Any] = {"Name": field.name, "Type": hive_type(field.type)}
        if field.doc:
            column["Comment"] = field.doc[:255]
        columns.append(column)
    return columns
