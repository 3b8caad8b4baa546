"""Athena SQL on the local machine: translate with sqlglot, run with DuckDB.

The table is read as a pyarrow dataset through fsspec, so a local folder and
``s3://`` work alike, and DuckDB pushes filters and projections into the scan.
Any table name in the query (``cloudtrail_logs``, or the name you registered)
resolves to the events table, or to the Insights table when asked for
(``kind="insights"``); CTE names are left alone.
"""

from __future__ import annotations

import posixpath
import re
import time
from collections.abc import Callable
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


PartitionFilter = dict[str, Callable[[str], bool]]
"""Per partition key, which folder values a query can read (keys absent: any value)."""


def table_dataset(
    dest: Storage, schema: TableSchema = EVENTS, filters: PartitionFilter | None = None
) -> ds.Dataset:
    """A table under ``dest`` as a Hive-partitioned dataset with string keys.

    The dataset is made of the files this function lists, so DuckDB lists nothing again;
    with ``filters``, only the partition folders they admit are listed at all.
    """
    root = dest.path(schema.name)
    files = _partition_files(dest, root, filters or {})
    if files is None:
        raise NoTableError(f"no {schema.name} table here yet: {_hint(schema)}", key=dest.url(root))
    partitioning = ds.partitioning(
        pa.schema([(key, pa.string()) for key in PARTITION_KEYS]), flavor="hive"
    )
    return ds.dataset(
        files,
        filesystem=dest.fs,
        format="parquet",
        partitioning=partitioning,
        partition_base_dir=root,
        schema=_table_schema(schema),
        exclude_invalid_files=False,
    )


def _hint(schema: TableSchema) -> str:
    if schema is EVENTS:
        return "run `ctparquet ingest SOURCE DEST` first"
    return "ingest writes it when the source holds CloudTrail-Insight/ objects"


def _partition_files(dest: Storage, root: str, filters: PartitionFilter) -> list[str] | None:
    """The Parquet files of the partitions ``filters`` admit (None: no table at all): one
    listing of the whole table when nothing is filtered, else a delimiter listing per
    admitted folder, level by level."""
    if not filters:
        everything = [
            f.path
            for f in dest.list_after(root)
            if f.path.endswith(".parquet") and not _hidden(posixpath.relpath(f.path, root))
        ]
        return everything or None
    top = dest.list_dir(root)
    if not top.folders and not top.files:
        return None
    folders = [root]
    for key in PARTITION_KEYS:
        admits = filters.get(key)
        below: list[str] = []
        for folder in folders:
            listing = top if folder == root else dest.list_dir(folder)
            for child in listing.folders:
                name = posixpath.basename(child)
                found, _, value = name.partition("=")
                if found == key and (admits is None or admits(value)):
                    below.append(child)
        folders = below
    files: list[str] = []
    for folder in folders:
        files += sorted(
            f.path
            for f in dest.list_after(folder)
            if f.path.endswith(".parquet") and not _hidden(posixpath.relpath(f.path, folder))
        )
    return files


def _hidden(relative: str) -> bool:
    """Staging and hidden files and folders: Hive, Athena and pyarrow skip them too."""
    return any(part.startswith((".", "_")) for part in relative.split("/"))


_COMPARE: dict[type[exp.Expr], Callable[[str, str], bool]] = {
    exp.EQ: lambda value, literal: value == literal,
    exp.GT: lambda value, literal: value > literal,
    exp.GTE: lambda value, literal: value >= literal,
    exp.LT: lambda value, literal: value < literal,
    exp.LTE: lambda value, literal: value <= literal,
}
_FLIPPED: dict[type[exp.Expr], type[exp.Expr]] = {
    exp.EQ: exp.EQ,
    exp.GT: exp.LT,
    exp.GTE: exp.LTE,
    exp.LT: exp.GT,
    exp.LTE: exp.GTE,
}


def partition_filters(tree: exp.Expr) -> PartitionFilter:
    """What the query's WHERE says about partition folders, where it is sure to hold.

    Only the top-level AND terms of the WHERE of the one SELECT reading the table are used,
    and only comparisons of a partition column with string literals (``=``, ``IN``, ``<``,
    ``<=``, ``>``, ``>=``, ``BETWEEN``): every row they exclude, the query excludes too.
    String comparison is the SQL's own, since the columns are strings; ranges on year, month
    and day work because their folder names are zero-padded. Anything else: no filter.
    """
    tables = list(tree.find_all(exp.Table))
    if len(tables) != 1 or not isinstance(tables[0].parent, exp.From | exp.Join):
        return {}
    select = tables[0].find_ancestor(exp.Select)
    where = select.args.get("where") if select is not None else None
    if where is None:
        return {}
    names = {tables[0].alias_or_name.lower(), tables[0].name.lower()}
    tests: dict[str, list[Callable[[str], bool]]] = {}
    for term in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
        found = _partition_test(term, names)
        if found is not None:
            tests.setdefault(found[0], []).append(found[1])
    return {key: _all_of(checks) for key, checks in tests.items()}


def _all_of(checks: list[Callable[[str], bool]]) -> Callable[[str], bool]:
    return lambda value: all(check(value) for check in checks)


def _partition_test(term: exp.Expr, tables: set[str]) -> tuple[str, Callable[[str], bool]] | None:
    """(partition key, test of a folder value) for one WHERE term, if it is such a test."""
    while isinstance(term, exp.Paren):
        term = term.this
    key = _partition_column(term.this, tables)
    if isinstance(term, exp.In) and not term.args.get("query"):
        values = [_string(e) for e in term.expressions]
        if key is None or not values or None in values:
            return None
        return key, lambda value, allowed=frozenset(values): value in allowed
    if isinstance(term, exp.Between):
        low, high = _string(term.args["low"]), _string(term.args["high"])
        if key is None or low is None or high is None:
            return None
        return key, lambda value: low <= value <= high
    return _comparison(term, tables)


def _comparison(term: exp.Expr, tables: set[str]) -> tuple[str, Callable[[str], bool]] | None:
    """``column <op> 'literal'`` or ``'literal' <op> column``, as a test of a folder value."""
    kind = type(term)
    if kind not in _COMPARE:
        return None
    left, right = term.this, term.expression
    key, literal = _partition_column(left, tables), _string(right)
    if key is None or literal is None:
        key, literal, kind = _partition_column(right, tables), _string(left), _FLIPPED[kind]
    if key is None or literal is None:
        return None
    compare, bound = _COMPARE[kind], literal
    return key, lambda value: compare(value, bound)


def _partition_column(node: exp.Expr, tables: set[str]) -> str | None:
    if not isinstance(node, exp.Column) or node.name.lower() not in PARTITION_KEYS:
        return None
    if node.table and node.table.lower() not in tables:
        return None
    return node.name.lower()


def _string(node: exp.Expr) -> str | None:
    return str(node.this) if isinstance(node, exp.Literal) and node.is_string else None


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
    sql = to_duckdb_sql(athena_sql)
    dataset = table_dataset(dest, schema, partition_filters(sqlglot.parse_one(sql, read="duckdb")))
    connection = duckdb.connect()
    connection.register(VIEW, dataset)
    try:
        table = connection.sql(sql).to_arrow_table()
    except duckdb.Error as error:
        raise QueryError(f"{error} (as DuckDB SQL: {sql})") from None
    finally:
        connection.close()
    return QueryResult(table, sql, time.perf_counter() - started)
