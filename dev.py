#!/usr/bin/env python3
"""The project's two entry points, needing nothing but Python 3.11+ and pip.

    python3 dev.py demo   set up, convert real CloudTrail samples, query the table
    python3 dev.py test   set up, lint, type-check and run the whole test suite

Both create ./.venv and install the project into it (again only when
pyproject.toml changed), so a fresh checkout needs no other step.
"""

from __future__ import annotations

import compileall
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed-from"
SHARED_SAMPLES = ROOT.parent / "shared" / "data" / "invictus-ir" / "AWSLogs"
DEMO = ROOT / "demo-output"

SEED_TEMPLATE_QUERY = """SELECT
 useridentity.arn,
 eventname,
 sourceipaddress,
 eventtime
FROM cloudtrail_logs
LIMIT 100"""


def run(*command: str | Path, check: bool = True) -> int:
    print("+", " ".join(str(c) for c in command), flush=True)
    env = {
        **os.environ,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # Prefect's ephemeral server keeps a SQLite DB in PREFECT_HOME (default ~/.prefect);
        # one migrated by another Prefect version stops it starting. Ours is the project's own.
        "PREFECT_HOME": str(ROOT / ".prefect"),
    }
    return subprocess.run([str(c) for c in command], cwd=ROOT, env=env, check=check).returncode


def setup() -> None:
    """Create .venv and install the project with its dev extra, once per build input."""
    # The native scanner is compiled at install: its source and build script count too.
    built_from = ("pyproject.toml", "setup.py", "transforms/_speedups.c")
    wanted = hashlib.sha256(b"".join((ROOT / p).read_bytes() for p in built_from)).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        compile_bytecode()
        return
    if not (BIN / "python").exists():
        venv.create(VENV, with_pip=True)
    run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    STAMP.write_text(wanted)
    compile_bytecode()


def compile_bytecode() -> None:
    """Compile the project's modules (only those changed): where PYTHONDONTWRITEBYTECODE is
    set, as on this machine, every process would compile them again, 0.1 s of each start."""
    for package in ("flows", "transforms", "schemas", "tests"):
        compileall.compile_dir(ROOT / package, quiet=1)


def demo() -> int:
    """Convert the real samples (or a generated corpus) and answer the seed's template query."""
    setup()
    source, said = demo_input(SHARED_SAMPLES)
    print(f"Demo input: {said}.", flush=True)
    if source != SHARED_SAMPLES:
        run(BIN / "python", "-m", "tests.corpus", fresh(source.parent), "--events", "20000")
    # The Prefect flow, in Prefect's ephemeral mode (a temporary local server: no set-up).
    return convert_and_answer(source, fresh(DEMO / "table"), "--prefect")


def demo_input(samples: Path) -> tuple[Path, str]:
    """The logs the demo converts, and how to say which they are."""
    if samples.is_dir():
        return samples, f"the real samples in {samples}"
    generated = DEMO / "generated-logs" / "AWSLogs"
    return generated, f"a generated corpus: the real samples were not found at {samples}"


def fresh(folder: Path) -> Path:
    """``folder``, emptied: each demo answers from its own input, never from an earlier run."""
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def convert_and_answer(source: Path, table: Path, *options: str, bin_dir: Path = BIN) -> int:
    """Convert ``source`` into ``table``, then print the seed's template query's answer."""
    # Samples are years old: list every delivery day, not the scheduled look-back window.
    ingest: tuple[str | Path, ...] = (bin_dir / "ctparquet", "ingest", source, table)
    status = run(*ingest, "--lookback-days", "0", *options, check=False)
    if status not in (0, 3):  # 3: converted, with problems it listed
        return status
    return run(bin_dir / "ctparquet", "query", table, SEED_TEMPLATE_QUERY, check=False)


def test() -> int:
    """Lint, type-check and run every test (two workers: this suite is sized for 2 cores)."""
    setup()
    for command in (
        (BIN / "ruff", "check", "."),
        (BIN / "ruff", "format", "--check", "."),
        (BIN / "mypy",),
    ):
        if status := run(*command, check=False):
            return status
    # loadfile: a module's tests share one worker, so an expensive session (the Spark JVM of
    # test_hive_ddl.py) starts once. (loadgroup's xdist_group does not group under pytest 9.)
    pytest = ("-m", "pytest", "-n", "2", "--dist", "loadfile", "-q", *sys.argv[2:])
    return run(BIN / "python", *pytest, check=False)


def set_up() -> int:
    """Only the set-up (the first step of the other two)."""
    setup()
    return 0


if __name__ == "__main__":
    commands = {"demo": demo, "test": test, "setup": set_up}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        sys.exit(2)
    sys.exit(commands[sys.argv[1]]())
