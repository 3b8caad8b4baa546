"""Athena SQL on the local machine: translate with sqlglot, run with DuckDB.

The table is read as a pyarrow dataset through fsspec, so a local folder and
``s3://`` work alike, and DuckDB pushes filters and projections into the scan.
Any table name in the query (``cloudtrail_logs``, or the name you registered)
resolves to the events table, or to the Insights table when asked for
(``kind="insights"``); CTE names are left alone.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import sqlglot
from sqlglot import exp

from flows.storage import Storage
from schemas.catalog import TABLES
from schemas.cloudtrail import EVENTS, PARTITION_KEYS, TableSchema
from schemas.derive import arrow_schema
from transforms.errors import PipelineError

VIEW = "cloudtrail_events"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # sqlglot underlines the bad token for terminals


class NoTableError(PipelineError):
    """The destination holds no such table yet."""


class QueryError(PipelineError):
    """The SQL could not be translated or run."""


@dataclass
class QueryResult:
    table: pa.Table
    sql: str
    """The DuckDB SQL that ran."""
    seconds: float


def table_dataset(dest: Storage, schema: TableSchema = EVENTS) -> ds.Dataset:
    """A table under ``dest`` as a Hive-partitioned dataset with string keys."""
    root = dest.path(schema.name)
    if not dest.exists(root) or not any(f.path.endswith(".parquet") for f in dest.list_files(root)):
        hint = (
            "run `ctparquet ingest SOURCE DEST` first"
            if schema is EVENTS
            else "ingest writes it when the source holds CloudTrail-Insight/ objects"
        )
        raise NoTableError(f"no {schema.name} table here yet: {hint}", key=dest.url(root))
    partitioning = ds.partitioning(
        pa.schema([(key, pa.string()) for key in PARTITION_KEYS]), flavor="hive"
    )
    return ds.dataset(
        root,
        filesystem=dest.fs,
        format="parquet",
        partitioning=partitioning,
        schema=_table_schema(schema),
        exclude_invalid_files=False,
    )


def _table_schema(schema: TableSchema) -> pa.Schema:
    arrow = arrow_schema(schema.columns)
    for key in PARTITION_KEYS:
        arrow = arrow.append(pa.field(key, pa.string()))
    return arrow


def to_duckdb_sql(athena_sql: str) -> str:
    """Athena (Trino) SQL as DuckDB SQL, every table name pointing at the one table."""
    try:
        statements = sqlglot.parse(athena_sql, read="athena")
    except sqlglot.errors.ParseError as error:
        raise QueryError(f"not Athena SQL: {_ANSI.sub('', str(error))}") from None
    if len(statements) != 1 or statements[0] is None:
        raise QueryError("give exactly one SQL statement")
    tree = statements[0]
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if table.name not in ctes:
            alias = table.alias or (table.name if table.name != VIEW else "")
            table.replace(exp.to_table(VIEW).as_(alias) if alias else exp.to_table(VIEW))
    return tree.sql(dialect="duckdb")


def run_query(dest_url: str, athena_sql: str, kind: str = EVENTS.name) -> QueryResult:
    """Run one Athena SQL statement over the ``kind`` table under ``dest_url``."""
    if kind not in TABLES:
        raise QueryError(f"unknown table kind {kind!r}: one of {sorted(TABLES)}")
    return query_storage(Storage(dest_url), athena_sql, TABLES[kind])


def query_storage(dest: Storage, athena_sql: str, schema: TableSchema = EVENTS) -> QueryResult:
    """``run_query`` over an open storage (a benchmark counts the bytes its filesystem reads)."""
    started = time.perf_counter()
    dataset = table_dataset(dest, schema)
    sql = to_duckdb_sql(athena_sql)
    connection = duckdb.connect()
    connection.register(VIEW, dataset)
    try:
        table = connection.sql(sql).to_arrow_table()
    except duckdb.Error as error:
        raise QueryError(f"{error} (as DuckDB SQL: {sql})") from None
    finally:
        connection.close()
    return QueryResult(table, sql, time.perf_counter() - started)
