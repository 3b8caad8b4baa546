"""Loading a saved index gives back what was saved, and costs a batch thread no imports.

A worker loads a partition's index whenever another writer (a worker beside it, an
earlier run) wrote there last. ``pq.read_table`` would import pyarrow.dataset for it
(35 ms, with the GIL held, in the middle of a batch); the index is one file, read whole.
"""

from __future__ import annotations

import random
import subprocess
import sys
import uuid

import polars as pl
from polars.testing import assert_frame_equal

from flows.event_index import PartitionIndex

LOAD_IN_A_FRESH_INTERPRETER = """
import sys
import polars as pl
from flows.event_index import PartitionIndex

saved = PartitionIndex()
saved.add("part-a.parquet", 1234, pl.Series(["id-1", "id-2", "id-3"]))
loaded = PartitionIndex.from_parquet(saved.to_parquet())
assert loaded.covers == saved.covers, loaded.covers
print("pyarrow.dataset" in sys.modules)
"""


def _event_ids(rng: random.Random, count: int) -> pl.Series:
    return pl.Series([str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)])


def test_a_saved_index_loads_back_whole():
    rng = random.Random(7)
    saved = PartitionIndex()
    saved.add("part-a.parquet", 100, _event_ids(rng, 500))
    saved.add("part-b.parquet", 200, _event_ids(rng, 300))
    saved.vanish(["part-a.parquet"])
    loaded = PartitionIndex.from_parquet(saved.to_parquet())
    assert loaded.covers == saved.covers
    order = ["eventid", "file"]
    assert_frame_equal(loaded.ids.sort(order), saved.ids.sort(order))


def test_loading_an_index_imports_no_dataset_layer():
    result = subprocess.run(
        [sys.executable, "-c", LOAD_IN_A_FRESH_INTERPRETER],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert result.stdout.strip() == "False", result.stdout + result.stderr
