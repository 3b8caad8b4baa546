"""Start-up benchmark: every ``ctparquet`` subcommand as a user runs it, over a local table.

    python -m tests.benchmarks.startup --repeat 5

Each subcommand runs as its own ``ctparquet`` process (the console script), with no
Prefect API configured (``PREFECT_API_URL`` unset, an empty ``PREFECT_HOME``), over
local folders: an empty source, or a tiny trail (a few hundred events, converted once
before the clock starts) that the command finds nothing new in. Reported, medians:

- first work: seconds from exec to the command's first open or listing of a folder it
  was given (the source, the table): its start-up. Timed in a ``python -c`` that runs
  the CLI's ``main`` as the console script does, with an audit hook watching for it;
  that run also names the heavy packages the command imported (``sys.modules``).
  "its CPU": the CPU seconds the process had used by then (less moved by other load).
- exit, CPU: wall and CPU seconds (with children) from exec to exit of the console
  script itself, the work included (a listing or two for most; 41 queries for
  ``hunt``, charts for ``report``). CPU moves less than wall with other load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CTPARQUET = Path(sys.executable).with_name("ctparquet")

HEAVY = (
    "prefect", "boto3", "botocore", "s3fs", "aiobotocore", "polars", "pyarrow",
    "pyarrow.dataset", "duckdb", "sqlglot", "jinja2", "plotly", "dask", "rich.progress",
)  # fmt: skip
"""The packages worth naming when a command imports them (each costs 0.1-3 s)."""

TINY_EVENTS = 300
"""Distinct events in the tiny trail (one day of two regions, with its late deliveries)."""

_DRIVER = """
import gc, json, sys, time
out, watched, sys.argv = sys.argv[1], tuple(json.loads(sys.argv[2])), ["ctparquet", *sys.argv[3:]]
first_work = []

def on_event(event, args):  # the first touch of a folder the command names: its first work
    if not first_work and event in ("open", "os.scandir", "os.listdir", "os.mkdir"):
        if watched and isinstance(args[0], str) and args[0].startswith(watched):
            first_work.extend((time.time(), time.process_time()))

sys.addaudithook(on_event)
from flows.cli import main
try:
    main()
except SystemExit as stop:
    code = stop.code
else:
    code = 0
with open(out, "w") as file:
    found = {"exit": code, "modules": sorted(sys.modules), "first_work": first_work}
    json.dump({**found, "collecting": gc.isenabled()}, file)
"""


@dataclass(frozen=True)
class CliRun:
    """A ``ctparquet`` run in a fresh interpreter: its exit status, output, every module, and
    when it first touched a folder it was given (seconds after exec; None: it did not)."""

    exit: object
    stdout: str
    stderr: str
    modules: frozenset[str]
    first_work: float | None = None
    first_work_cpu: float | None = None
    """CPU seconds the process had used by then."""
    collecting: bool | None = None
    """Whether the cycle collector was on at exit (it is off while a command imports)."""

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def imported(self, *packages: str) -> list[str]:
        """Which of ``packages`` it imported (a package counts with any of its modules)."""
        return [p for p in packages if any(m == p or m.startswith(p + ".") for m in self.modules)]


def run_cli(
    args: list[str], env: dict[str, str], cwd: Path = ROOT, watched: tuple[str, ...] = ()
) -> CliRun:
    """Run ``ctparquet ARGS`` through the CLI's ``main`` in a fresh interpreter (what the
    console script does), noting when it first opens or lists a path under ``watched``."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "modules.json"
        started = time.time()
        done = subprocess.run(
            [sys.executable, "-c", _DRIVER, str(out), json.dumps(watched), *args],
            cwd=cwd, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        found = json.loads(out.read_text())
    at, cpu = found["first_work"] or (None, None)
    first = at - started if at is not None else None
    modules = frozenset(found["modules"])
    return CliRun(found["exit"], done.stdout, done.stderr, modules, first, cpu, found["collecting"])


def without_prefect_api(home: Path) -> dict[str, str]:
    """The environment of a user with no Prefect API configured: a fresh PREFECT_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CTPARQUET_"))}
    env.update(PREFECT_HOME=str(home / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    return env


def prepare(work: Path) -> dict[str, Path]:
    """The folders the commands run on: an empty source, a tiny trail and its table."""
    from tests.corpus import generate_corpus

    folders = {"empty": work / "empty", "trail": work / "trail", "table": work / "table"}
    (folders["empty"] / "AWSLogs").mkdir(parents=True, exist_ok=True)
    if not (folders["table"] / "events").exists():
        shutil.rmtree(folders["trail"], ignore_errors=True)
        generate_corpus(folders["trail"], seed=1, events=TINY_EVENTS, days=1, accounts=1)
        subprocess.run(
            [str(CTPARQUET), "ingest", str(folders["trail"]), str(folders["table"]),
             "--lookback-days", "0", "--no-prefect", "--json"],
            env=without_prefect_api(work), stdout=subprocess.DEVNULL, check=False,
        )  # fmt: skip
    return folders


def commands(f: dict[str, Path], work: Path) -> dict[str, list[str]]:
    """Each subcommand (and the help) as a user types it, over the folders of ``prepare``."""
    trail, table, empty = str(f["trail"]), str(f["table"]), str(f["empty"])
    days = ["--start", "2024-01-05", "--end", "2024-01-06"]
    return {
        "--help": ["--help"],
        "ingest (empty source)": ["ingest", empty, str(work / "out-ingest")],
        "ingest (nothing new)": ["ingest", trail, table, "--lookback-days", "0"],
        "backfill (empty source)": ["backfill", empty, str(work / "out-backfill"), *days],
        "compact": ["compact", table],
        "verify": ["verify", trail, table, *days],
        "redrive": ["redrive", table],
        "query": ["query", table, "SELECT count(*) AS n FROM cloudtrail_logs"],
        "hunt": ["hunt", table],
        "report": ["report", table, "--out", str(work / "report.html")],
        "ddl": ["ddl", table],
        "register (refuses a local table)": ["register", table, "--database", "d", "--table", "t"],
    }


def time_command(args: list[str], env: dict[str, str], cores: int | None) -> tuple[float, float]:
    """Wall and CPU seconds (the process and its children) from exec to exit."""
    cpus = sorted(os.sched_getaffinity(0))[:cores] if cores else None
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(CTPARQUET), *args], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,  # noqa: PLW1509
    )  # fmt: skip
    _, _, usage = os.wait4(process.pid, 0)
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def project_bytecode_cached() -> bool:
    """Is the project's own code compiled in ``__pycache__``? (Not where the environment
    sets PYTHONDONTWRITEBYTECODE and nothing compiled it: every import then compiles.)"""
    import importlib.util

    source = ROOT / "flows" / "cli.py"
    cached = Path(importlib.util.cache_from_source(str(source)))
    return cached.exists() and cached.stat().st_mtime >= source.stat().st_mtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command (median)")
    parser.add_argument("--cores", type=int, default=None, help="pin to the first N CPUs")
    parser.add_argument("--only", nargs="+", help="commands whose name starts with these")
    parser.add_argument("--work", type=Path, default=ROOT / ".cache" / "startup")
    parser.add_argument("--output", type=Path, help="also write every run's times here (JSON)")
    args = parser.parse_args()
    folders = prepare(args.work)
    env = without_prefect_api(args.work)
    table = commands(folders, args.work)
    if args.only:
        table = {k: v for k, v in table.items() if k.startswith(tuple(args.only))}
    rows: list[str] = []
    runs: dict[str, dict[str, list[float]]] = {}
    for name, argv in table.items():
        walls, cpus = [], []
        for _ in range(args.repeat):
            for leftover in ("out-ingest", "out-backfill"):  # a first run's table each time
                shutil.rmtree(args.work / leftover, ignore_errors=True)
            wall, cpu = time_command(argv, env, args.cores)
            walls.append(wall)
            cpus.append(cpu)
        watched = tuple(a for a in argv if a.startswith(str(args.work)))
        driven = [run_cli(argv, env, watched=watched) for _ in range(args.repeat)]
        firsts = [r.first_work for r in driven if r.first_work is not None]
        first_cpus = [r.first_work_cpu for r in driven if r.first_work_cpu is not None]
        runs[name] = {"wall": walls, "cpu": cpus, "first_work": firsts, "first_cpu": first_cpus}
        first = f"{statistics.median(firsts):.2f}" if firsts else "-"
        first_cpu = f"{statistics.median(first_cpus):.2f}" if first_cpus else "-"
        heavy = ", ".join(m for m in HEAVY if m in driven[-1].modules) or "-"
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        rows.append(f"| {name} | {first} | {first_cpu} | {wall:.2f} | {cpu:.2f} | "
                    f"{driven[-1].exit} | {heavy} |")  # fmt: skip
        print(rows[-1], file=sys.stderr, flush=True)
    if args.output:
        args.output.write_text(json.dumps(runs, indent=1))
    cached = "cached" if project_bytecode_cached() else "NOT cached (compiled at each import)"
    print(f"\n`ctparquet …`, no Prefect API, median of {args.repeat}; project bytecode {cached}\n")
    print("| command | first work s | its CPU s | exit s | CPU s | status | heavy imports |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
