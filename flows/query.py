"""Athena SQL on the local machine: translate with sqlglot, run with DuckDB.

The table is read as a pyarrow dataset through fsspec, so a local folder and
``s3://`` work alike, and DuckDB pushes filters and projections into the scan.
Any table name in the query (``cloudtrail_logs``, or the name you registered)
resolves to the events table; CTE names are left alone.
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

from flows.batch import EVENTS_FOLDER
from flows.storage import Storage
from schemas.cloudtrail import PARTITION_KEYS
from schemas.derive import arrow_schema
from transforms.errors import PipelineError

VIEW = "cloudtrail_events"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # sqlglot underlines the bad token for terminals


class NoTableError(PipelineError):
    """The destination holds no events table yet."""


class QueryError(PipelineError):
    """The SQL could not be translated or run."""


@dataclass
class QueryResult:
    table: pa.Table
    sql: str
    """The DuckDB SQL that ran."""
    seconds: float


def events_dataset(dest: Storage) -> ds.Dataset:
    """The events table under ``dest`` as a Hive-partitioned dataset with string keys."""
    root = dest.path(EVENTS_FOLDER)
    if not dest.exists(root) or not any(f.path.endswith(".parquet") for f in dest.list_files(root)):
        raise NoTableError(
            "no events table here yet: run `ctparquet ingest SOURCE DEST` first", key=dest.url(root)
        )
    partitioning = ds.partitioning(
        pa.schema([(key, pa.string()) for key in PARTITION_KEYS]), flavor="hive"
    )
    return ds.dataset(
        root,
        filesystem=dest.fs,
        format="parquet",
        partitioning=partitioning,
        schema=_table_schema(),
        exclude_invalid_files=False,
    )


def _table_schema() -> pa.Schema:
    schema = arrow_schema()
    for key in PARTITION_KEYS:
        schema = schema.append(pa.field(key, pa.string()))
    return schema


def to_duckdb_sql(athena_sql: str) -> str:
    """Athena (Trino) SQL as DuckDB SQL, every table name pointing at the events table."""
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


def run_query(dest_url: str, athena_sql: str) -> QueryResult:
    """Run one Athena SQL statement over the events table under ``dest_url``."""
    started = time.perf_counter()
    dataset = events_dataset(Storage(dest_url))
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
