"""Bytes a query reads: the standard table over raw gzip JSON vs our Parquet table.

    python -m tests.benchmarks.query_bytes                      # the real samples
    python -m tests.benchmarks.query_bytes --source DIR         # any AWSLogs/ folder
    python -m tests.benchmarks.query_bytes --events 200000      # a generated corpus

For each of the seed's queries and the security questions (``tests/compat.py``):

- **raw**: what Athena scans on the standard table (``CloudTrailSerde``): every
  gzip object under its location (a query naming no partition), or, for one
  naming a partition, the objects in that delivery folder. Athena bills these
  compressed bytes.
- **ours (Athena model)**: from the Parquet footers, the compressed column chunks
  of the top-level columns the query names, in the partitions its partition
  predicates select, plus the footers: what Athena reads (it reads no column a
  query does not name; it may read less, skipping row groups on statistics).
- **ours (measured)**: the bytes DuckDB actually read through the filesystem
  while ``ctparquet query`` ran the query (counted by a wrapping filesystem).

Nothing is timed: the figures are bytes, the same on every machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import sqlglot
from fsspec.implementations.local import LocalFileSystem
from sqlglot import exp

from flows.ingest import run_ingest
from flows.query import query_storage
from flows.storage import Storage
from schemas.cloudtrail import EVENTS, PARTITION_KEYS
from tests.compat import event_partition, questions, raw_records
from transforms.errors import UnrecognisedKeyError
from transforms.keys import parse_key

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT.parent / "shared" / "data" / "invictus-ir" / "AWSLogs"
CACHE = ROOT / ".cache" / "bench"
COLUMNS = [c.name for c in EVENTS.columns]


class CountingFileSystem(LocalFileSystem):  # type: ignore[misc]
    """A local filesystem that counts the bytes read through the files it opens."""

    bytes_read = 0

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        return _CountingFile(super()._open(path, mode=mode, **kwargs), self)


class _CountingFile:
    def __init__(self, inner: Any, fs: CountingFileSystem) -> None:
        self._inner, self._fs = inner, fs

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._inner.read(size)
        self._fs.bytes_read += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        count: int = self._inner.readinto(buffer)
        self._fs.bytes_read += count
        return count

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __enter__(self) -> _CountingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.close()


def columns_named(sql: str) -> set[str]:
    """The top-level columns a query reads (all of them for ``SELECT *``)."""
    tree = sqlglot.parse_one(sql, read="athena")
    if any(isinstance(e, exp.Star) for e in tree.expressions):
        return set(COLUMNS)
    named = set()
    for column in tree.find_all(exp.Column):
        for part in column.parts:
            if part.name in COLUMNS:
                named.add(part.name)
                break
    return named


def partition_filter(sql: str) -> str:
    """The query's WHERE conjuncts that name only partition keys, as DuckDB SQL ('' if none)."""
    where = sqlglot.parse_one(sql, read="athena").args.get("where")
    if where is None:
        return ""
    conjuncts = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
    kept = [
        c.sql(dialect="duckdb")
        for c in conjuncts
        if (names := {col.name for col in c.find_all(exp.Column)}) and names <= set(PARTITION_KEYS)
    ]
    return " AND ".join(kept)


def selected(partitions: list[tuple[str, ...]], predicate: str) -> set[tuple[str, ...]]:
    """The partitions (region, year, month, day) a partition predicate selects."""
    if not predicate:
        return set(partitions)
    connection = duckdb.connect()
    connection.execute("CREATE TABLE parts (region TEXT, year TEXT, month TEXT, day TEXT)")
    if partitions:
        connection.executemany("INSERT INTO parts VALUES (?, ?, ?, ?)", partitions)
    rows = connection.execute(f"SELECT * FROM parts WHERE {predicate}").fetchall()
    connection.close()
    return {tuple(r) for r in rows}


def raw_objects(source: Path) -> dict[tuple[str, ...], int]:
    """gzip bytes of the API event objects, by delivery folder (region, yyyy, mm, dd)."""
    folders: dict[tuple[str, ...], int] = {}
    for path in source.rglob("*.json.gz"):
        try:
            parsed = parse_key(path.as_posix())
        except UnrecognisedKeyError:
            continue
        if parsed.kind != "events":
            continue
        d = parsed.delivery_date
        folder = (parsed.region, f"{d:%Y}", f"{d:%m}", f"{d:%d}")
        folders[folder] = folders.get(folder, 0) + path.stat().st_size
    return folders


def parquet_files(events_root: Path) -> Iterator[tuple[tuple[str, ...], Path]]:
    for path in sorted(events_root.rglob("*.parquet")):
        parts = dict(p.split("=", 1) for p in path.relative_to(events_root).parent.parts)
        yield tuple(parts[k] for k in PARTITION_KEYS), path


def athena_model_bytes(events_root: Path, columns: set[str], partitions: set[tuple]) -> int:
    """Compressed column chunks of ``columns`` plus footers, in the selected partitions."""
    total = 0
    for partition, path in parquet_files(events_root):
        if partition not in partitions:
            continue
        metadata = pq.ParquetFile(path).metadata
        total += metadata.serialized_size + 8  # footer, its length and the magic
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            for index in range(row_group.num_columns):
                chunk = row_group.column(index)
                if chunk.path_in_schema.split(".", 1)[0] in columns:
                    total += chunk.total_compressed_size
    return total


def measure(source: Path, lake: Path, day: tuple[str, str, str, str]) -> list[dict[str, Any]]:
    raw = raw_objects(source)
    events_root = lake / "events"
    ours = [p for p, _ in parquet_files(events_root)]
    storage = Storage(str(lake))
    counting = CountingFileSystem()
    storage.fs = counting
    results = []
    for question in questions(day):
        predicate = partition_filter(question.sql)
        raw_bytes = sum(raw[f] for f in selected(list(raw), predicate))
        model = athena_model_bytes(
            events_root, columns_named(question.sql), selected(ours, predicate)
        )
        counting.bytes_read = 0
        started = time.perf_counter()
        query_storage(storage, question.sql)
        seconds = time.perf_counter() - started
        results.append(
            {
                "query": question.name,
                "raw_gzip_bytes": raw_bytes,
                "ours_athena_model_bytes": model,
                "ours_duckdb_read_bytes": counting.bytes_read,
                "ratio": round(raw_bytes / model, 1) if model else None,
                "ours_query_seconds": round(seconds, 3),
            }
        )
    return results


def markdown(results: list[dict[str, Any]], title: str) -> str:
    lines = [
        f"{title}\n",
        "| query | raw gzip JSON read | ours, Athena model | ours, read by DuckDB | raw / ours "
        "| ours, local query s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['query']} | {r['raw_gzip_bytes']:,} | {r['ours_athena_model_bytes']:,} "
        f"| {r['ours_duckdb_read_bytes']:,} | {r['ratio']}x | {r['ours_query_seconds']} |"
        for r in results
    ]
    return "\n".join(lines)


def busiest_day(source: Path) -> tuple[str, str, str, str]:
    """The (region, yyyy, mm, dd) partition with the most events: the one-day query's day."""
    counts: Counter[tuple[str, str, str, str]] = Counter()
    for record in raw_records(source):
        try:
            counts[event_partition(record)] += 1
        except (KeyError, TypeError, ValueError):
            continue  # no region or no ISO eventTime: the pipeline reports these, never places them
    return counts.most_common(1)[0][0]


def generated(events: int, seed: int) -> Path:
    from tests.corpus import generate_corpus  # type: ignore[import-not-found,unused-ignore]

    folder = CACHE / f"query-bytes-corpus-{events}-{seed}"
    if not (folder / "DONE").exists():
        shutil.rmtree(folder, ignore_errors=True)
        print(f"generating {events:,} events into {folder} (once)…", file=sys.stderr)
        generate_corpus(folder, seed=seed, events=events, days=7, events_per_object=200)
        (folder / "DONE").write_text("")
    return folder / "AWSLogs"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, help="An AWSLogs/ folder (default: the samples).")
    parser.add_argument("--events", type=int, help="Generate a corpus of this many events.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="Also write the results to this JSON file.")
    parser.add_argument(
        "--table", type=Path, help="Measure this existing table (e.g. compacted) of --source."
    )
    parser.add_argument("--day", help="The one-day query's REGION/YYYY/MM/DD (default: busiest).")
    args = parser.parse_args(argv)
    source = generated(args.events, args.seed) if args.events else (args.source or SAMPLES)
    day = tuple(args.day.split("/")) if args.day else busiest_day(source)
    if args.table:
        results = measure(source, args.table, day)
        title = f"table {args.table} of {source}; one-day query on {'/'.join(day)}"
    else:
        with tempfile.TemporaryDirectory() as work:
            lake = Path(work) / "lake"
            summary = run_ingest(str(source), str(lake), lookback_days=0)  # every day
            results = measure(source, lake, day)
        title = (
            f"{summary.events_written:,} events from {source} "
            f"({summary.bytes_read:,} bytes of gzip JSON); one-day query on {'/'.join(day)}"
        )
    print(markdown(results, title))
    if args.json:
        args.json.write_text(json.dumps({"title": title, "results": results}, indent=2))


if __name__ == "__main__":
    main()
