"""Peak memory of compacting one large partition, at a given target size.

    python tests/benchmarks/compact_memory.py build DIR [--copies 40] [--split 1]
    python tests/benchmarks/compact_memory.py run DIR --target-mb 128 [--s3]
    python tests/benchmarks/compact_memory.py writer DIR --file-mb 128 [--whole]

``build`` makes a table with one partition of ``copies`` files of 30,000 generated
events each (distinct eventIDs and times), about 3 MB a file, each split in
``split`` files (``--copies 1 --split 150``: a typical day's 150 small files).
``run`` compacts a copy of it (locally, or uploaded to a moto server with
``--s3``) in this process and prints one JSON line: files and bytes out, peak RSS,
the swap's seconds, seconds. Run each target
in a fresh process: peak RSS is per process.

``writer`` measures the one step whose memory depended on the target: a file of
about ``file-mb`` written from parts of 20,000 events (parts of the built table,
over again), streamed to a local file, or with ``--whole`` built in memory and
then written (what compaction did before, ``streamed_parquet`` +
``write_atomically``). Encoded at zstd level 1 to be quick: the memory is the
same. Run as a script (not ``-m``) so that
``PYTHONPATH=/other/checkout`` measures that checkout's compaction.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

PARTITION = "events/region=us-east-1/year=2024/month=01/day=05"


def build(folder: Path, copies: int, split: int) -> None:
    import polars as pl
    import pyarrow.parquet as pq

    from flows.ingest import run_ingest
    from flows.settings import Settings
    from tests.corpus import generate_corpus

    scratch = Path(tempfile.mkdtemp())
    corpus = generate_corpus(
        scratch / "logs", seed=7, events=30_000, days=1, regions=("us-east-1",)
    )
    run_ingest(
        str(corpus.root / "AWSLogs"), str(scratch / "lake"), settings=Settings(lookback_days=0)
    )
    frame = pl.concat(
        [pl.read_parquet(f) for f in sorted((scratch / "lake" / PARTITION).glob("*.parquet"))]
    )
    out = folder / PARTITION
    out.mkdir(parents=True, exist_ok=True)
    for copy in range(copies):  # each copy its own events: shifted by a millisecond, renamed
        shifted = frame.with_columns(
            pl.col("eventid") + f"-{copy}",
            pl.col("eventtimestamp") + timedelta(milliseconds=copy),
        )
        table = shifted.sort("eventtimestamp").to_arrow()
        rows = -(-table.num_rows // split)
        for piece in range(split):
            name = out / f"part-{copy:04d}-{piece:04d}.parquet"
            pq.write_table(table.slice(piece * rows, rows), name, compression="zstd")
    shutil.rmtree(scratch)


def run(folder: Path, target_mb: int, on_s3: bool) -> dict[str, object]:
    from flows.compaction import run_compact

    work = Path(tempfile.mkdtemp())
    shutil.copytree(folder, work / "lake")
    if on_s3:
        from tests.s3_server import moto_server

        with moto_server() as s3:
            client = s3.client()
            client.create_bucket(Bucket="lake")
            for file in sorted((work / "lake").rglob("*.parquet")):
                key = f"t/{file.relative_to(work / 'lake').as_posix()}"
                client.put_object(Bucket="lake", Key=key, Body=file.read_bytes())
            shutil.rmtree(work)
            base = peak_rss_mb()
            started = time.perf_counter()
            summary = run_compact("s3://lake/t", before=date(2100, 1, 1), target_mb=target_mb)
    else:
        base = peak_rss_mb()
        started = time.perf_counter()
        summary = run_compact(str(work / "lake"), before=date(2100, 1, 1), target_mb=target_mb)
        shutil.rmtree(work)
    found = summary.as_json()
    return {
        "target_mb": target_mb,
        "storage": "s3 (moto)" if on_s3 else "local",
        "events": found["events"],
        "files_before": found["files_before"],
        "files_after": found["files_after"],
        "bytes_after_mb": round(found["bytes_after"] / 1e6, 1),
        "peak_rss_mb_before_compaction": base,
        "peak_rss_mb": peak_rss_mb(),
        "swap_seconds": found.get("swap_seconds_max"),
        "seconds": round(time.perf_counter() - started, 1),
        "problems": found["problems"],
    }


def writer(folder: Path, file_mb: int, whole: bool) -> dict[str, object]:
    import io
    import itertools

    import polars as pl

    from flows.storage import Storage
    from transforms.parquet import streamed_parquet, write_streamed_parquet

    part = pl.concat([pl.read_parquet(f) for f in sorted(folder.rglob("*.parquet"))])[:20_000]
    probe = io.BytesIO()
    write_streamed_parquet([part], probe, zstd_level=1)
    parts_needed = max(1, int(file_mb * 1e6 / len(probe.getvalue())))
    work = Path(tempfile.mkdtemp())
    dest = Storage(str(work))
    base = peak_rss_mb()
    started = time.perf_counter()
    parts = itertools.repeat(part, parts_needed)
    if whole:
        dest.write_atomically(dest.path("out.parquet"), streamed_parquet(parts, zstd_level=1))
    else:
        with dest.streaming_write(dest.path("out.parquet")) as sink:
            write_streamed_parquet(parts, sink, zstd_level=1)
    size = (work / "out.parquet").stat().st_size
    shutil.rmtree(work)
    return {
        "file_mb": round(size / 1e6, 1),
        "how": "whole in memory, then written" if whole else "streamed to the file",
        "peak_rss_mb_before": base,
        "peak_rss_mb": peak_rss_mb(),
        "seconds": round(time.perf_counter() - started, 1),
    }


def peak_rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=("build", "run", "writer"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--copies", type=int, default=40)
    parser.add_argument("--split", type=int, default=1)
    parser.add_argument("--target-mb", type=int, default=128)
    parser.add_argument("--s3", action="store_true")
    parser.add_argument("--file-mb", type=int, default=128)
    parser.add_argument("--whole", action="store_true")
    args = parser.parse_args()
    if args.command == "build":
        build(args.folder, args.copies, args.split)
    elif args.command == "writer":
        print(json.dumps(writer(args.folder, args.file_mb, args.whole)))
    else:
        print(json.dumps(run(args.folder, args.target_mb, args.s3)))


if __name__ == "__main__":
    sys.path.append(str(Path(__file__).resolve().parents[2]))  # for tests.*, after PYTHONPATH
    main()
