"""Start-up benchmark: every ``ctparquet`` subcommand as a user runs it, over a local table.

    python -m tests.benchmarks.startup --repeat 5

Each subcommand runs as its own ``ctparquet`` process (the console script), with no
Prefect API configured (``PREFECT_API_URL`` unset, an empty ``PREFECT_HOME``), over
local folders: an empty source, or a tiny trail (a few hundred events, converted once
before the clock starts) that the command finds nothing new in. Its time to exit is
the fixed cost a user waits before the command's first real work (an upper bound:
the work itself is a listing or two). Reports medians of wall and CPU seconds (CPU
moves less with other load on a shared machine), and the heavy packages the command
imported, found by running the same command once more in a ``python -c`` that prints
``sys.modules`` at exit.
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
import json, sys
from flows.cli import main
out, sys.argv = sys.argv[1], ["ctparquet", *sys.argv[2:]]
try:
    main()
except SystemExit as stop:
    code = stop.code
else:
    code = 0
with open(out, "w") as file:
    json.dump({"exit": code, "modules": sorted(sys.modules)}, file)
"""


@dataclass(frozen=True)
class CliRun:
    """A ``ctparquet`` run in a fresh interpreter: its exit status, output, every module."""

    exit: object
    stdout: str
    stderr: str
    modules: frozenset[str]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def imported(self, *packages: str) -> list[str]:
        """Which of ``packages`` it imported (a package counts with any of its modules)."""
        return [p for p in packages if any(m == p or m.startswith(p + ".") for m in self.modules)]


def run_cli(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> CliRun:
    """Run ``ctparquet ARGS`` through the CLI's ``main`` in a fresh interpreter."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "modules.json"
        done = subprocess.run(
            [sys.executable, "-c", _DRIVER, str(out), *args],
            cwd=cwd, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        found = json.loads(out.read_text())
    return CliRun(found["exit"], done.stdout, done.stderr, frozenset(found["modules"]))


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
    rows, runs = [], {}
    for name, argv in table.items():
        walls, cpus = [], []
        for _ in range(args.repeat):
            for leftover in ("out-ingest", "out-backfill"):  # a first run's table each time
                shutil.rmtree(args.work / leftover, ignore_errors=True)
            wall, cpu = time_command(argv, env, args.cores)
            walls.append(wall)
            cpus.append(cpu)
        runs[name] = {"wall": walls, "cpu": cpus}
        run = run_cli(argv, env)
        heavy = [m for m in HEAVY if m in run.modules]
        rows.append((name, statistics.median(walls), statistics.median(cpus), run.exit, heavy))
        print(f"{name}: {rows[-1][1]:.2f} s", file=sys.stderr, flush=True)
    if args.output:
        args.output.write_text(json.dumps(runs, indent=1))
    cached = "cached" if project_bytecode_cached() else "NOT cached (compiled at each import)"
    print(f"\n`ctparquet …`, no Prefect API, median of {args.repeat}; project bytecode {cached}\n")
    print("| command | wall s | CPU s | exit | heavy imports |")
    print("|---|---|---|---|---|")
    for name, wall, cpu, status, heavy in rows:
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {status} | {', '.join(heavy) or '-'} |")


if __name__ == "__main__":
    main()
