"""Saving an index skips tidying only when tidying would change nothing."""

from __future__ import annotations

import random

import polars as pl
from polars.testing import assert_frame_equal

from flows.event_index import PartitionIndex


def _rows(index: PartitionIndex) -> pl.DataFrame:
    return index.ids.sort(["eventid", "file"], nulls_last=True)


def _fully_tidied(index: PartitionIndex) -> pl.DataFrame:
    reference = PartitionIndex(dict(index.covers), index.ids.clone(), tidy_already=False)
    reference.tidy()
    return _rows(reference)


def test_a_saved_index_holds_what_a_full_tidy_leaves_after_any_mix_of_changes():
    generator = random.Random(12)
    for _ in range(40):
        index = PartitionIndex()
        pool = [f"id-{n}" for n in range(60)]
        for step in range(8):
            action = generator.choice(["add", "add", "add-repeats", "vanish", "adopt"])
            name = f"part-{generator.randrange(4)}.parquet"
            if action == "add":
                index.add(name, step, pl.Series(generator.sample(pool, 10)))
            elif action == "add-repeats":  # a file whose IDs repeat (not ingest's, but allowed)
                ids = generator.sample(pool, 5)
                index.add(name, step, pl.Series(ids + ids[:2]))
            elif action == "vanish":
                index.vanish([name])
            else:
                index.adopt([(f"compacted-{step}.parquet", step)])
            expected = _fully_tidied(index)
            saved = PartitionIndex.from_parquet(index.to_parquet())
            assert_frame_equal(_rows(saved), expected)
            assert saved.covers == index.covers


def test_ingest_adding_files_of_new_ids_never_needs_the_full_tidy():
    index = PartitionIndex()
    for number in range(3):
        index.add(f"part-{number}.parquet", 100, pl.Series([f"{number}-{i}" for i in range(5)]))
    assert index.tidy_already
    index.vanish(["part-0.parquet"])
    assert not index.tidy_already
    index.to_parquet()
    assert index.tidy_already
