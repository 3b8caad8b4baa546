"""Could the first objects be inflated while the process imports? Measured, not assumed.

    python -m tests.benchmarks.startup_overlap --repeat 4

On two cores a run's first batch starts ~0.45 s after exec: start-up and the plan, on
one core (ADR 18's last note). This times, in fresh processes pinned to two cores,
``import flows.run`` (the conversion's imports) and the inflating and hashing of every
third object of the benchmark's corpus, done either one after the other or at once
(the objects in a second thread, started before the imports). If the second core
could work through the imports, *at once* would end sooner by about the import time.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.benchmarks.__main__ import ROOT, corpus_folder


def child(mode: str, corpus: Path, switch_interval: float | None) -> None:
    if switch_interval:
        sys.setswitchinterval(switch_interval)
    started = time.perf_counter()
    objects = sorted(corpus.glob("AWSLogs/**/*.json.gz"))[::3]
    inflated: list[float] = []

    # Imported before the clock matters for the thread: a thread importing while the main
    # thread imports would wait on the import locks, not on the interpreter.
    from transforms.decode import decompress  # light: isal and msgspec, no Polars

    def inflate_and_hash() -> None:
        for path in objects:
            document, _ = decompress(path.read_bytes(), 1 << 30)
            hashlib.sha256(document).hexdigest()
            inflated.append(time.perf_counter())

    worker = threading.Thread(target=inflate_and_hash)
    if mode == "at-once":
        worker.start()
    import flows.run  # noqa: F401 - the imports being timed

    imported = time.perf_counter()
    during_imports = sum(1 for t in inflated if t <= imported)
    if mode == "at-once":
        worker.join()
    else:
        inflate_and_hash()
    print(f"{imported - started} {time.perf_counter() - started} {during_imports} {len(objects)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--switch-interval", type=float, help="sys.setswitchinterval, seconds")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), args.switch_interval)
        return
    corpus = corpus_folder(300_000, 1)
    cpus = sorted(os.sched_getaffinity(0))[:2]
    results: dict[str, list[list[float]]] = {"one-after-the-other": [], "at-once": []}
    interval = ["--switch-interval", str(args.switch_interval)] if args.switch_interval else []
    for _ in range(args.repeat):
        for mode, runs in results.items():
            output = subprocess.run(
                [sys.executable, "-m", "tests.benchmarks.startup_overlap", *interval, "--child",
                 mode, str(corpus)], check=True, cwd=ROOT, capture_output=True, text=True,
                preexec_fn=lambda: os.sched_setaffinity(0, cpus),
            ).stdout  # fmt: skip
            runs.append([float(v) for v in output.split()])
    print("| mode | imports done, s | all done, s | objects inflated during the imports |")
    print("|---|---:|---:|---:|")
    for mode, runs in results.items():
        imported = statistics.median(r[0] for r in runs)
        done = statistics.median(r[1] for r in runs)
        during = statistics.median(r[2] for r in runs)
        print(f"| {mode} | {imported:.3f} | {done:.3f} | {during:.0f} of {runs[0][3]:.0f} |")


if __name__ == "__main__":
    main()
