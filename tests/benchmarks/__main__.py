"""Throughput benchmark: our conversion vs DuckDB's COPY … PARTITION_BY, and the floor.

    python -m tests.benchmarks --events 1000000 --threads 1 2 --repeat 2

Generates a seeded corpus once into ``.cache/``, then alternates the contenders
(A B C A B C …), each run in its own process so peak RSS is its own, and reports
medians: events/s, MB/s of uncompressed JSON, peak RSS, output bytes, and our
ratio to DuckDB at the same thread count. Results go to a JSON file too.

- ours: ``flows.ingest.run_ingest`` — the code path of the flows (listing, state,
  decoding, shaping, de-duplication, writing) — without the Prefect server.
- duckdb: ``COPY (SELECT … FROM read_json(…)) TO … (FORMAT PARQUET,
  PARTITION_BY (region, year, month, day))`` producing the same columns (types
  derived from our schema, payloads as JSON text, structs as structs).
- floor: decompress (isal) + parse (msgspec, record spans) only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "bench"


def corpus_folder(events: int, seed: int) -> Path:
    folder = CACHE / f"corpus-{events}-{seed}"
    if not (folder / "DONE").exists():
        shutil.rmtree(folder, ignore_errors=True)
        print(f"generating {events:,} events into {folder} (once)…", file=sys.stderr, flush=True)
        # In a child process: a parent holding the generator's memory would have that memory
        # counted in every later child's peak RSS (it is copied at fork, before exec).
        subprocess.run(
            [sys.executable, "-m", "tests.benchmarks", "--generate", str(folder),
             str(events), str(seed)],
            check=True, cwd=ROOT,
        )  # fmt: skip
        (folder / "DONE").write_text("")
    return folder


def corpus_bytes(folder: Path) -> tuple[int, int]:
    """(gzip bytes, JSON bytes) of the API event objects."""
    import gzip

    gz = raw = 0
    for path in (folder / "AWSLogs").rglob("*.json.gz"):
        if "/CloudTrail/" in path.as_posix():
            data = path.read_bytes()
            gz += len(data)
            raw += len(gzip.decompress(data))
    return gz, raw


# --- The contenders, each run in a child process ---------------------------------------


def run_ours(source: Path, out: Path, threads: int) -> dict[str, float]:
    from flows.run import run_ingest
    from flows.settings import Settings

    settings = Settings(workers=threads)
    # Every delivery day of the corpus (it is dated in the past), not today's window.
    summary = run_ingest(str(source / "AWSLogs"), str(out), settings=settings, lookback_days=0)
    return {"events": summary.events_read}


def _duckdb_type(field_type: object) -> str:
    from schemas.cloudtrail import ArrayOf, JsonText, Struct, Text

    if isinstance(field_type, Text):
        return "VARCHAR"
    if isinstance(field_type, JsonText):
        return "JSON"
    if isinstance(field_type, Struct):
        members = ", ".join(f'"{f.key}" {_duckdb_type(f.type)}' for f in field_type.fields)
        return f"STRUCT({members})"
    if isinstance(field_type, ArrayOf):
        return f"{_duckdb_type(field_type.element)}[]"
    raise TypeError(field_type)


def run_duckdb(source: Path, out: Path, threads: int) -> dict[str, float]:
    import duckdb

    from schemas.cloudtrail import EVENTS, Struct

    record = _duckdb_type(Struct(EVENTS.record_fields))
    select = ", ".join(f'r."{f.key}"::{_cast(f)} AS {f.name}' for f in EVENTS.record_fields)
    logs = (source / "AWSLogs").as_posix()
    # Account-level and org-trail layouts (DuckDB takes one ** per pattern).
    files = f"{logs}/*/CloudTrail/*/*/*/*/*.json.gz', '{logs}/o-*/*/CloudTrail/*/*/*/*/*.json.gz"
    connection = duckdb.connect()
    connection.execute(f"SET threads = {threads}")
    connection.execute("SET preserve_insertion_order = false")
    query = f"""
        COPY (
            SELECT {select},
                r."eventTime"::TIMESTAMPTZ AS eventtimestamp,
                r."awsRegion" AS region,
                strftime(r."eventTime"::TIMESTAMPTZ, '%Y') AS year,
                strftime(r."eventTime"::TIMESTAMPTZ, '%m') AS month,
                strftime(r."eventTime"::TIMESTAMPTZ, '%d') AS day
            FROM (
                SELECT unnest(Records) AS r
                FROM read_json(['{files}'], columns = {{'Records': '{record}[]'}},
                               format = 'unstructured', maximum_object_size = 1073741824)
            )
        ) TO '{out.as_posix()}' (FORMAT PARQUET, COMPRESSION ZSTD,
                                 PARTITION_BY (region, year, month, day))
    """
    connection.execute("SET TimeZone = 'UTC'")
    started = time.perf_counter()
    connection.execute(query)
    seconds = time.perf_counter() - started
    # Counted from the output, after the clock: the peer reads its input once, like ours.
    events = connection.execute(
        f"SELECT count(*) FROM read_parquet('{out.as_posix()}/**/*.parquet')"
    ).fetchone()
    return {"events": int(events[0]) if events else 0, "seconds": seconds}


def _cast(field: object) -> str:
    from schemas.cloudtrail import Field

    assert isinstance(field, Field)
    duckdb_type = _duckdb_type(field.type)
    return "VARCHAR" if duckdb_type in ("JSON", "VARCHAR") else duckdb_type


def run_floor(source: Path, out: Path, threads: int) -> dict[str, float]:
    from transforms.decode import decompress, split_records

    events = 0
    for path in sorted((source / "AWSLogs").rglob("*.json.gz")):
        if "/CloudTrail/" in path.as_posix():
            events += len(split_records(decompress(path.read_bytes())[0]).records)
    return {"events": events}


CONTENDERS = {"ours": run_ours, "duckdb": run_duckdb, "floor": run_floor}


def child(name: str, source: Path, out: Path, threads: int) -> None:
    """Run one contender; print its result as JSON (seconds are its own wall time)."""
    import duckdb  # noqa: F401 - imported before the clock starts, like a running service
    import polars  # noqa: F401

    import flows.ingest  # noqa: F401

    started = time.perf_counter()
    result: dict[str, float] = dict(CONTENDERS[name](source, out, threads))
    result.setdefault("seconds", time.perf_counter() - started)
    print(json.dumps(result))


def measure(name: str, source: Path, threads: int) -> dict[str, float]:
    out = CACHE / f"out-{name}-{threads}"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "POLARS_MAX_THREADS": str(threads), "PREFECT_HOME": str(CACHE / "prefect")}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.benchmarks", "--child", name, str(source), str(out),
         str(threads)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    _, status, usage = os.wait4(process.pid, 0)
    output = process.stdout.read() if process.stdout else ""
    if status != 0:
        raise RuntimeError(f"{name} failed with status {status}")
    result = json.loads(output.strip().splitlines()[-1])
    cpu = usage.ru_utime + usage.ru_stime
    out_bytes = sum(p.stat().st_size for p in out.rglob("*.parquet")) if out.exists() else 0
    return {
        "seconds": result["seconds"],
        "events": result["events"],
        "cpu_seconds": cpu,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "output_bytes": out_bytes,
    }


def summarise(
    runs: dict[tuple[str, int], list[dict[str, float]]], events: int, gz: int, raw: int
) -> dict[str, object]:
    """Medians per (contender, threads), with our ratio to DuckDB at the same thread count."""
    rows = []
    for (name, threads), results in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        seconds = statistics.median(r["seconds"] for r in results)
        peer = runs.get(("duckdb", threads))
        peer_seconds = statistics.median(r["seconds"] for r in peer) if peer else None
        rows.append(
            {
                "contender": name,
                "threads": threads,
                "events_per_second": round(results[0]["events"] / seconds),
                "mb_per_second": round(raw / 1e6 / seconds, 1),
                "cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in results), 1),
                "peak_rss_mb": round(max(r["peak_rss_mb"] for r in results)),
                "output_bytes": int(results[-1]["output_bytes"]),
                "ratio_to_duckdb": (
                    round(peer_seconds / seconds, 2) if peer_seconds and name != "duckdb" else None
                ),
            }
        )
    return {"events": events, "gzip_bytes": gz, "json_bytes": raw, "results": rows}


def render(report: dict[str, object], repeat: int) -> str:
    header = (
        f"{report['events']:,} events, {int(report['json_bytes']) / 1e6:,.0f} MB JSON, "  # type: ignore[call-overload]
        f"{int(report['gzip_bytes']) / 1e6:,.0f} MB gzip; medians of {repeat} runs"  # type: ignore[call-overload]
    )
    columns = ["contender", "threads", "events/s", "MB/s", "CPU-s", "RSS-MB", "out-MB", "vs-DuckDB"]
    lines = [header, "| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for row in report["results"]:  # type: ignore[attr-defined]
        ratio = "" if row["ratio_to_duckdb"] is None else f"{row['ratio_to_duckdb']:.2f}x"
        lines.append(
            f"| {row['contender']} | {row['threads']} | {row['events_per_second']:,} | "
            f"{row['mb_per_second']} | {row['cpu_seconds']} | {row['peak_rss_mb']} | "
            f"{row['output_bytes'] / 1e6:.1f} | {ratio} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--only", nargs="+", default=list(CONTENDERS), choices=list(CONTENDERS))
    parser.add_argument("--output", type=Path, default=ROOT / ".cache" / "bench-results.json")
    parser.add_argument("--child", nargs=4, metavar=("NAME", "SOURCE", "OUT", "THREADS"))
    parser.add_argument("--generate", nargs=3, metavar=("FOLDER", "EVENTS", "SEED"))
    args = parser.parse_args()
    if args.generate:
        from tests.corpus import generate_corpus

        folder, events, seed = args.generate
        generate_corpus(
            Path(folder), seed=int(seed), events=int(events), days=7, events_per_object=200
        )
        return
    if args.child:
        name, source, out, threads = args.child
        child(name, Path(source), Path(out), int(threads))
        return

    source = corpus_folder(args.events, args.seed)
    gz_bytes, json_bytes = corpus_bytes(source)
    runs: dict[tuple[str, int], list[dict[str, float]]] = {}
    for round_ in range(args.repeat):
        for threads in args.threads:
            for name in args.only:
                if name == "floor" and threads > 1:
                    continue
                result = measure(name, source, threads)
                runs.setdefault((name, threads), []).append(result)
                print(
                    f"round {round_ + 1} {name:6} {threads} thread(s): "
                    f"{result['events'] / result['seconds']:>9,.0f} events/s "
                    f"{result['seconds']:7.1f} s  rss {result['peak_rss_mb']:6.0f} MB",
                    file=sys.stderr, flush=True,
                )  # fmt: skip

    report = summarise(runs, args.events, gz_bytes, json_bytes)
    print(render(report, args.repeat))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
