"""Throughput benchmark: ``ctparquet ingest`` as a user runs it vs DuckDB at its best.

    python -m tests.benchmarks --events 1000000 --cores 1 2 --repeat 2

Generates a seeded corpus once into ``.cache/``, then alternates the contenders
(A B C A B C …), each in its own process pinned to the first ``cores`` CPUs, and
reports medians: events/s, MB/s of uncompressed JSON, CPU-seconds, peak RSS of the
whole process tree, output bytes, and our ratio to DuckDB on the same cores.

- ours: the ``ctparquet ingest SOURCE DEST --lookback-days 0 --no-prefect`` process
  with default settings (its workers: one forked process per core it may use, each
  pinned to its core), timed from its start to its exit (start-up included).
- ours-threads (2 cores and more): the same with ``CTPARQUET_WORKER_PROCESSES=false``,
  the worker threads a run gets where it cannot fork (a Prefect flow run).
- ours-inprocess: ``flows.run.run_ingest`` in a warm process (imports not timed).
- duckdb, duckdb-snappy: DuckDB's fastest forms found (``--duckdb-forms`` times every form tried):
  ``COPY (SELECT … FROM read_json(…, format = 'auto', records = true, columns = …))
  TO … (FORMAT PARQUET, COMPRESSION ZSTD, PARTITION_BY (region, year, month, day))``
  with the columns we produce (typed structs, payloads as JSON text), ``threads`` =
  cores; only the COPY statement is timed. duckdb-snappy is the same with SNAPPY, DuckDB's
  default codec; each round runs both, and the faster is the peer.
- ours-startup: the same ``ctparquet ingest`` over an empty source (its fixed cost,
  on the same cores); "after start-up" is our ratio with it taken off.
- floor: decompress (isal) + split records (msgspec spans), one core.

The machine is shared: ratios of CPU-seconds are given too (less moved by other
load than wall time). ``--startup`` also times start-up with Prefect (default CLI).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "bench"
CTPARQUET = Path(sys.executable).with_name("ctparquet")


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


# --- DuckDB, written the ways a user would ---------------------------------------------


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


def _cast(field: object) -> str:
    from schemas.cloudtrail import Field

    assert isinstance(field, Field)
    duckdb_type = _duckdb_type(field.type)
    return "VARCHAR" if duckdb_type in ("JSON", "VARCHAR") else duckdb_type


DUCKDB_FORMS: dict[str, str] = {
    "auto, records, columns": "format = 'auto', records = true, columns = {columns}",
    "auto, records, columns, max object 1 GiB": (
        "format = 'auto', records = true, columns = {columns}, maximum_object_size = 1073741824"
    ),
    "newline_delimited, columns": (
        "format = 'newline_delimited', records = true, columns = {columns}"
    ),
    "unstructured, columns, max object 1 GiB": (
        "format = 'unstructured', columns = {columns}, maximum_object_size = 1073741824"
    ),
}
"""``read_json`` options tried; ``{columns}`` is the ``Records`` column's type from our schema."""
DUCKDB_BEST = "auto, records, columns"
SNAPPY = ", snappy"
"""A form's suffix: the output in Snappy, DuckDB's default Parquet codec (a user who writes no
COMPRESSION gets it), instead of ZSTD: ~7% less CPU for DuckDB, files ~50% larger."""
DUCKDB_CONTENDERS = {"duckdb": DUCKDB_BEST, "duckdb-snappy": DUCKDB_BEST + SNAPPY}
"""DuckDB's fastest forms, each run in every round: the faster one is the peer of that round's
ratios (their speeds are within the noise of each other, so neither can be fixed in advance)."""


def duckdb_sql(source: Path, out: Path, form: str = DUCKDB_BEST) -> str:
    """The peer's statement: our columns, from the schema, partitioned like our table."""
    from schemas.cloudtrail import EVENTS, Struct

    record = _duckdb_type(Struct(EVENTS.record_fields))
    columns = "{'Records': '" + record + "[]'}"
    select = ", ".join(f'r."{f.key}"::{_cast(f)} AS {f.name}' for f in EVENTS.record_fields)
    logs = (source / "AWSLogs").as_posix()
    # Account-level and org-trail layouts (DuckDB takes one ** per pattern).
    files = f"['{logs}/*/CloudTrail/*/*/*/*/*.json.gz', '{logs}/o-*/*/CloudTrail/*/*/*/*/*.json.gz'"
    files += "]"
    options = DUCKDB_FORMS[form.removesuffix(SNAPPY)].format(columns=columns)
    codec = "SNAPPY" if form.endswith(SNAPPY) else "ZSTD"
    return f"""
        COPY (
            SELECT {select},
                r."eventTime"::TIMESTAMPTZ AS eventtimestamp,
                r."awsRegion" AS region,
                strftime(r."eventTime"::TIMESTAMPTZ, '%Y') AS year,
                strftime(r."eventTime"::TIMESTAMPTZ, '%m') AS month,
                strftime(r."eventTime"::TIMESTAMPTZ, '%d') AS day
            FROM (SELECT unnest(Records) AS r FROM read_json({files}, {options}))
        ) TO '{out.as_posix()}' (FORMAT PARQUET, COMPRESSION {codec},
                                 PARTITION_BY (region, year, month, day))
    """


def run_duckdb(source: Path, out: Path, cores: int, form: str = DUCKDB_BEST) -> dict[str, float]:
    import duckdb

    connection = duckdb.connect()
    connection.execute(f"SET threads = {cores}")
    connection.execute("SET preserve_insertion_order = false")
    connection.execute("SET TimeZone = 'UTC'")
    started = time.perf_counter()
    connection.execute(duckdb_sql(source, out, form))
    seconds = time.perf_counter() - started
    # Counted from the output, after the clock: the peer reads its input once, like ours.
    events = connection.execute(
        f"SELECT count(*) FROM read_parquet('{out.as_posix()}/**/*.parquet')"
    ).fetchone()
    return {"events": int(events[0]) if events else 0, "seconds": seconds}


# --- Ours, and the floor ----------------------------------------------------------------


def ingest_command(source: Path, out: Path, *extra: str) -> list[str]:
    """``ctparquet ingest`` as a user runs it on an old corpus: every delivery day."""
    logs = str(source / "AWSLogs")
    return [str(CTPARQUET), "ingest", logs, str(out), "--lookback-days", "0", "--json", *extra]


def run_ours_inprocess(source: Path, out: Path, cores: int) -> dict[str, float]:
    from flows.run import run_ingest
    from flows.settings import Settings

    settings = Settings()  # pinned to ``cores``: the default uses that many worker threads
    summary = run_ingest(str(source / "AWSLogs"), str(out), settings=settings, lookback_days=0)
    return {"events": summary.events_read}


def run_floor(source: Path, out: Path, cores: int) -> dict[str, float]:
    from transforms.decode import decompress, split_records

    events = 0
    for path in sorted((source / "AWSLogs").rglob("*.json.gz")):
        if "/CloudTrail/" in path.as_posix():
            events += len(split_records(decompress(path.read_bytes())[0]).records)
    return {"events": events}


IN_PROCESS: dict[str, Callable[[Path, Path, int], dict[str, float]]] = {
    "duckdb": run_duckdb,
    "ours-inprocess": run_ours_inprocess,
    "floor": run_floor,
}
CONTENDERS = [
    "ours", "ours-threads", "ours-startup", "ours-inprocess", *DUCKDB_CONTENDERS, "floor"
]  # fmt: skip


def child(name: str, source: Path, out: Path, cores: int) -> None:
    """Run one in-process contender; print its result as JSON (seconds: its own wall time)."""
    import duckdb  # noqa: F401 - imported before the clock starts, like a running service
    import polars  # noqa: F401

    import flows.run  # noqa: F401

    runner = IN_PROCESS[name]
    started = time.perf_counter()
    result: dict[str, float] = dict(runner(source, out, cores))
    result.setdefault("seconds", time.perf_counter() - started)
    print(json.dumps(result))


# --- Measuring a process tree -----------------------------------------------------------


class TreeMemory:
    """Peak of the summed RSS of a process and its descendants, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_bytes = pid, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._done.wait(0.05):
            total = sum(_rss_pages(pid) for pid in _tree(self.pid)) * page
            self.peak_bytes = max(self.peak_bytes, total)


def _tree(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def _rss_pages(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def measure(name: str, source: Path, cores: int, form: str = DUCKDB_BEST) -> dict[str, float]:
    """Run a contender in a process pinned to ``cores`` CPUs; its wall, CPU and memory."""
    out = CACHE / f"out-{name}-{cores}"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PREFECT_HOME": str(CACHE / "prefect")}
    if name == "ours":  # default: a pinned worker process per usable core (ADR 19)
        command = ingest_command(source, out, "--no-prefect")
    elif name == "ours-threads":  # worker threads, as where a fork is not safe (ADR 17)
        command = ingest_command(source, out, "--no-prefect")
        env["CTPARQUET_WORKER_PROCESSES"] = "false"
    elif name == "ours-startup":  # the same process over an empty source: its fixed cost
        (CACHE / "empty" / "AWSLogs").mkdir(parents=True, exist_ok=True)
        command = ingest_command(CACHE / "empty", out, "--no-prefect")
    else:
        child_name, form = (
            ("duckdb", DUCKDB_CONTENDERS[name]) if name in DUCKDB_CONTENDERS else (name, form)
        )
        command = [sys.executable, "-m", "tests.benchmarks", "--child", child_name, str(source),
                   str(out), str(cores), "--form", form]  # fmt: skip
    cpus = sorted(os.sched_getaffinity(0))[:cores]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, cpus),  # noqa: PLW1509 - no threads yet
    )  # fmt: skip
    memory = TreeMemory(process.pid)
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    memory.stop()
    if status not in (0, 3 << 8):  # 3: finished with problems (the corpus has hostile records)
        raise RuntimeError(f"{name} failed with status {status}")
    result = json.loads(output.strip().splitlines()[-1])
    out_bytes = sum(p.stat().st_size for p in out.rglob("*.parquet")) if out.exists() else 0
    return {
        "seconds": wall
        if name.startswith("ours") and name != "ours-inprocess"
        else result["seconds"],
        "events": result.get("events_read", result.get("events", 0)),
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": max(memory.peak_bytes, usage.ru_maxrss * 1024) / 2**20,
        "output_bytes": out_bytes,
    }


def startup(prefect: bool) -> float:
    """Wall seconds of ``ctparquet ingest`` over an empty source: its fixed cost."""
    empty = CACHE / "empty"
    (empty / "AWSLogs").mkdir(parents=True, exist_ok=True)
    out = CACHE / "out-empty"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PREFECT_HOME": str(CACHE / "prefect")}
    started = time.perf_counter()
    command = ingest_command(empty, out, *([] if prefect else ["--no-prefect"]))
    subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


# --- Report -----------------------------------------------------------------------------


def summarise(
    runs: dict[tuple[str, int], list[dict[str, float]]], events: int, gz: int, raw: int
) -> dict[str, object]:
    """Medians per (contender, cores), with our ratio to DuckDB on the same cores."""
    rows = []
    for (name, cores), results in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        seconds = statistics.median(r["seconds"] for r in results)
        peer = _fastest_duckdb(runs, cores)
        peer_seconds = statistics.median(r["seconds"] for r in peer) if peer else None
        peer_cpu = statistics.median(r["cpu_seconds"] for r in peer) if peer else None
        cpu = statistics.median(r["cpu_seconds"] for r in results)
        fixed = runs.get(("ours-startup", cores))
        marginal = None
        if name == "ours" and fixed and peer_seconds:
            marginal = peer_seconds / (seconds - statistics.median(r["seconds"] for r in fixed))
        if name == "ours-startup":
            rows.append({"contender": name, "cores": cores, "seconds": round(seconds, 2),
                         "cpu_seconds": round(cpu, 1),
                         "peak_rss_mb": round(max(r["peak_rss_mb"] for r in results))})  # fmt: skip
            continue
        rows.append(
            {
                "contender": name,
                "cores": cores,
                "seconds": round(seconds, 2),
                "events_per_second": round(results[0]["events"] / seconds),
                "mb_per_second": round(raw / 1e6 / seconds, 1),
                "cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in results), 1),
                "peak_rss_mb": round(max(r["peak_rss_mb"] for r in results)),
                "output_bytes": int(results[-1]["output_bytes"]),
                "ratio_to_duckdb": (
                    round(peer_seconds / seconds, 2)
                    if peer_seconds and name not in DUCKDB_CONTENDERS
                    else None
                ),
                "marginal_ratio_to_duckdb": None if marginal is None else round(marginal, 2),
                "cpu_ratio_to_duckdb": (
                    round(peer_cpu / cpu, 2) if peer_cpu and name not in DUCKDB_CONTENDERS else None
                ),
            }
        )
    return {"events": events, "gzip_bytes": gz, "json_bytes": raw, "results": rows}


def _fastest_duckdb(
    runs: dict[tuple[str, int], list[dict[str, float]]], cores: int
) -> list[dict[str, float]] | None:
    """The runs of the DuckDB form with the lowest median wall time on ``cores``: the peer."""
    forms = [runs[(name, cores)] for name in DUCKDB_CONTENDERS if (name, cores) in runs]
    if not forms:
        return None
    return min(forms, key=lambda results: statistics.median(r["seconds"] for r in results))


def render(report: dict[str, object], repeat: int) -> str:
    header = (
        f"{report['events']:,} events, {int(report['json_bytes']) / 1e6:,.0f} MB JSON, "  # type: ignore[call-overload]
        f"{int(report['gzip_bytes']) / 1e6:,.0f} MB gzip; medians of {repeat} runs"  # type: ignore[call-overload]
    )
    columns = ["contender", "cores", "s", "events/s", "MB/s", "CPU-s", "RSS-MB", "out-MB",
               "vs DuckDB (wall)", "after start-up", "CPU-s"]  # fmt: skip
    lines = [header, "| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for row in report["results"]:  # type: ignore[attr-defined]
        if row["contender"] == "ours-startup":
            lines.append(
                f"| ours-startup (empty source) | {row['cores']} | {row['seconds']} | | | "
                f"{row['cpu_seconds']} | {row['peak_rss_mb']} | | | | |"
            )
            continue
        ratios = [
            "" if row[k] is None else f"{row[k]:.2f}x"
            for k in ("ratio_to_duckdb", "marginal_ratio_to_duckdb", "cpu_ratio_to_duckdb")
        ]
        lines.append(
            f"| {row['contender']} | {row['cores']} | {row['seconds']} | "
            f"{row['events_per_second']:,} | {row['mb_per_second']} | {row['cpu_seconds']} | "
            f"{row['peak_rss_mb']} | {row['output_bytes'] / 1e6:.1f} | {' | '.join(ratios)} |"
        )
    for label, seconds in report.get("startup", {}).items():  # type: ignore[attr-defined]
        lines.append(f"\nstart-up, empty source, {label}: {seconds:.2f} s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cores", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--only", nargs="+", default=CONTENDERS, choices=CONTENDERS)
    parser.add_argument("--duckdb-forms", action="store_true", help="time every DuckDB form once")
    parser.add_argument("--startup", action="store_true", help="also time start-up, both ways")
    parser.add_argument("--output", type=Path, default=ROOT / ".cache" / "bench-results.json")
    parser.add_argument("--child", nargs=4, metavar=("NAME", "SOURCE", "OUT", "CORES"))
    parser.add_argument(
        "--form", default=DUCKDB_BEST, choices=[*DUCKDB_FORMS, *(f + SNAPPY for f in DUCKDB_FORMS)]
    )
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
        name, source, out, cores = args.child
        if name == "duckdb":
            result = run_duckdb(Path(source), Path(out), int(cores), args.form)
            print(json.dumps(result))
            return
        child(name, Path(source), Path(out), int(cores))
        return

    source = corpus_folder(args.events, args.seed)
    gz_bytes, json_bytes = corpus_bytes(source)
    if args.duckdb_forms:
        for cores in args.cores:
            for form in [*DUCKDB_FORMS, DUCKDB_BEST + SNAPPY]:
                result = measure("duckdb", source, cores, form)
                print(
                    f"duckdb {cores} core(s), {form}: {result['seconds']:.1f} s, "
                    f"{result['events'] / result['seconds']:,.0f} events/s, "
                    f"{result['cpu_seconds']:.1f} CPU-s, rss {result['peak_rss_mb']:.0f} MB",
                    flush=True,
                )
        return
    runs: dict[tuple[str, int], list[dict[str, float]]] = {}
    for round_ in range(args.repeat):
        for cores in args.cores:
            for name in args.only:
                if (name == "floor" and cores > 1) or (name == "ours-threads" and cores < 2):
                    continue
                if name == "ours-startup" and "ours" not in args.only:
                    continue
                result = measure(name, source, cores)
                runs.setdefault((name, cores), []).append(result)
                print(
                    f"round {round_ + 1} {name:14} {cores} core(s): "
                    f"{result['events'] / result['seconds']:>9,.0f} events/s "
                    f"{result['seconds']:7.1f} s  rss {result['peak_rss_mb']:6.0f} MB",
                    file=sys.stderr, flush=True,
                )  # fmt: skip

    report = summarise(runs, args.events, gz_bytes, json_bytes)
    if args.startup:
        report["startup"] = {"--no-prefect": startup(prefect=False), "default": startup(True)}
    print(render(report, args.repeat))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
