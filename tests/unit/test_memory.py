"""Arrow buffers come from malloc, so freed memory can go back to the system."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from flows import memory
from tests.conftest import require

ROOT = Path(__file__).parents[2]

# Run in a fresh interpreter that imports only ``flows``: the allocator it reports is the one
# the package chose, not one this test (or another test in this process) set.
PROBE = """
import json, os
import flows  # every entry point imports the package first
import pyarrow as pa
from flows.memory import release_freed_memory

page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * page

backend = pa.default_memory_pool().backend_name
before = rss()
# 256 MiB in 64 KiB buffers (below glibc's mmap threshold, so they come from its heap), every
# 16th kept alive: the free memory is scattered between live blocks, where free() alone leaves
# it in the process and only malloc_trim gives it back.
buffers = [pa.allocate_buffer(64 << 10) for _ in range(4096)]
ones = b"\x01" * (64 << 10)
for buffer in buffers:
    memoryview(buffer).cast("B")[:] = ones  # touch every page: resident
kept = buffers[::16]
del buffer
allocated = rss()
buffers = None
freed = rss()
release_freed_memory()
trimmed = rss()
print(json.dumps({"backend": backend, "before": before, "allocated": allocated,
                  "freed": freed, "trimmed": trimmed, "kept": len(kept)}))
"""


def probe() -> dict[str, int | str]:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    found: dict[str, int | str] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_importing_flows_puts_arrow_on_the_system_allocator_and_freed_memory_goes_back():
    require(
        sys.platform == "linux" and Path("/proc/self/statm").exists(),
        "measuring RSS needs Linux's /proc/self/statm (glibc's malloc_trim)",
    )
    found = probe()
    assert found["backend"] == "system"
    allocated, freed, trimmed = (int(found[k]) for k in ("allocated", "freed", "trimmed"))
    grown = allocated - int(found["before"])
    assert grown > 200 << 20, f"the probe's buffers were not resident: {found}"
    # 15/16 of what was allocated is free; at least most of it must have left the process.
    assert allocated - trimmed > 0.6 * grown, f"freed memory stayed in the process: {found}"
    assert trimmed <= freed


def test_a_pool_the_user_chose_is_left_alone(monkeypatch):
    chosen: list[pa.MemoryPool] = []
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    monkeypatch.setattr(pa, "set_memory_pool", chosen.append)
    memory.use_system_allocator()
    assert chosen == []
