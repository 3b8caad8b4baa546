"""Which eventIDs a table partition already holds: an index object beside the table.

Every writer drops the events a partition already holds before it writes (ADR 4).
Reading the eventID column of every file in the partition for that made each run's
cost grow with the partition's file count (today's partitions gather 100-200 files
before compaction). Instead each partition has an index,
``DEST/_state/index/<table>/<partition>/eventids.parquet``: the eventIDs of the
files it *covers* (by name and size), each attributed to its file. A writer,
under the partition's lease, lists the partition, reads the index (one GET), reads
only the files it does not cover, writes its data file, then the index (one PUT).

Correctness never depends on the index being current: a writer killed between its
data file and the index leaves a file the index does not cover, which the next
writer reads. Files that vanish (compaction replaced them) keep their eventIDs,
attributed to no file: no writer ever drops an eventID from the table, so the set
stays a correct "already present" set. Compacted replacements are adopted without
reading them when their footers prove they hold exactly those IDs (docs/adr/0015).
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from flows.storage import Storage
from schemas.cloudtrail import DEDUP_COLUMN
from transforms.parquet import COMPACTED_PREFIX

log = logging.getLogger(__name__)

INDEX_FOLDER = "_state/index"
INDEX_NAME = "eventids.parquet"
_COVERS_KEY = b"ctparquet.covers"
_FORMAT = 1
_FOOTER_TAIL = 64 * 1024
"""Bytes read from a file's end to find its Parquet footer (one ranged GET)."""


@dataclass
class PartitionIndex:
    """One partition's eventIDs, each with the number of the file holding it (null: vanished)."""

    covers: dict[str, tuple[int, int]] = field(default_factory=dict)
    """File name -> (its number in ``ids``, its size when indexed)."""
    ids: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema={DEDUP_COLUMN: pl.String, "file": pl.Int32})
    )
    changed: bool = False
    tidy_already: bool = True
    """``ids`` has one row per (eventID, file) and no needless vanished rows: ``tidy`` has
    nothing to do. Ingest only adds files of distinct new IDs to an index without vanished
    rows, so it stays true there, and saving does not hash every ID again (70% of a save)."""

    def covered(self, name: str, size: int) -> bool:
        return self.covers.get(name, (-1, -1))[1] == size

    def add(self, name: str, size: int, event_ids: pl.Series) -> None:
        """Cover ``name`` (replacing what was known of an earlier file of that name)."""
        self.vanish([name])
        number = 1 + max((n for n, _ in self.covers.values()), default=-1)
        self.covers[name] = (number, size)
        added = pl.DataFrame(
            {DEDUP_COLUMN: event_ids.drop_nulls().cast(pl.String)},
        ).with_columns(file=pl.lit(number, pl.Int32))
        self.ids = pl.concat([self.ids, added])
        self.changed = True
        if self.tidy_already and (
            self.ids["file"].null_count()  # a vanished row this file's IDs may make needless
            or added[DEDUP_COLUMN].n_unique() < added.height
        ):
            self.tidy_already = False

    def vanish(self, names: list[str]) -> None:
        """These files are gone (or rewritten): their eventIDs stay known, held by no file."""
        numbers = [self.covers.pop(name)[0] for name in names if name in self.covers]
        if not numbers:
            return
        self.ids = self.ids.with_columns(
            file=pl.when(pl.col("file").is_in(numbers)).then(None).otherwise(pl.col("file"))
        )
        self.changed = True
        self.tidy_already = False

    def held_apart_from(self, own: str, event_ids: pl.Series) -> pl.Series:
        """Those of ``event_ids`` held by any file but ``own`` (a rerun's own earlier output)."""
        # The index's rows holding any of them: the batch's few IDs are hashed and the
        # index's many probed (hashing the index for every batch cost 2-4x more).
        hits = self.ids.filter(pl.col(DEDUP_COLUMN).is_in(event_ids.implode()))
        own_number = self.covers.get(own, (None, 0))[0]
        if own_number is not None:
            hits = hits.filter(pl.col("file").is_null() | (pl.col("file") != own_number))
        return hits[DEDUP_COLUMN].unique()

    def orphans(self) -> pl.Series:
        """eventIDs known only from vanished files: in the table, in some file not covered."""
        held = self.ids.filter(pl.col("file").is_not_null())[DEDUP_COLUMN].implode()
        vanished = self.ids.filter(pl.col("file").is_null())[DEDUP_COLUMN]
        return vanished.filter(~vanished.is_in(held)).unique()

    def adopt(self, names: list[tuple[str, int]]) -> None:
        """Cover ``names`` as holding exactly the orphaned eventIDs (proved by the caller)."""
        orphans = self.orphans()
        held = self.ids.filter(pl.col("file").is_not_null())
        self.ids = held
        self.tidy_already = False
        first = True
        for name, size in names:
            self.add(name, size, orphans if first else orphans.clear())
            first = False

    def tidy(self) -> None:
        """One row per (eventID, file); a vanished row only for an ID no file holds."""
        if self.tidy_already:
            return
        held = self.ids.filter(pl.col("file").is_not_null()).unique()
        self.ids = pl.concat(
            [held, self.orphans().to_frame().with_columns(file=pl.lit(None, pl.Int32))]
        )
        self.tidy_already = True

    def to_parquet(self) -> bytes:
        self.tidy()
        table = self.ids.to_arrow()
        covers = [{"name": n, "number": num, "size": s} for n, (num, s) in self.covers.items()]
        meta = json.dumps({"format": _FORMAT, "covers": covers}).encode()
        table = table.replace_schema_metadata({_COVERS_KEY: meta})
        sink = pa.BufferOutputStream()
        # eventIDs are unique: a dictionary of them is wasted work, their statistics unused.
        pq.write_table(
            table, sink, compression="zstd", use_dictionary=["file"], write_statistics=False
        )
        return bytes(sink.getvalue().to_pybytes())

    @classmethod
    def from_parquet(cls, data: bytes) -> PartitionIndex:
        # ParquetFile, not read_table: read_table goes through pyarrow.dataset, whose import
        # (35 ms, GIL held) a batch thread paid on its first partition written by another.
        table = pq.ParquetFile(pa.BufferReader(data)).read()
        meta = json.loads((table.schema.metadata or {})[_COVERS_KEY])
        covers = {c["name"]: (int(c["number"]), int(c["size"])) for c in meta["covers"]}
        ids = pl.from_arrow(table)
        assert isinstance(ids, pl.DataFrame)
        return cls(covers, ids.cast({DEDUP_COLUMN: pl.String, "file": pl.Int32}))


class KnownEventIds:
    """The partitions' indexes for one run (or one worker process), kept in memory.

    ``refresh`` (under the partition's lease) brings a partition's index up to date
    with its files; ``duplicates`` says which events it holds already; ``wrote`` and
    ``save`` record a new file and persist the index. ``stats`` counts the work.
    """

    MAX_EVENT_IDS = 1_000_000
    """eventIDs kept in memory across partitions (~60 MB); least recently used partitions
    are dropped past it. A dropped partition costs one GET of its index when touched again."""

    def __init__(self, dest: Storage) -> None:
        self._dest = dest
        self._by_folder: OrderedDict[str, PartitionIndex] = OrderedDict()
        self.stats: Counter[str] = Counter()
        """``index_reads``, ``index_writes``, ``files_read`` and ``files_adopted``."""

    def index_path(self, folder: str) -> str:
        """Where the index of the partition at ``folder`` lives."""
        relative = posixpath.relpath(folder, self._dest.root)
        return self._dest.path(INDEX_FOLDER, relative, INDEX_NAME)

    def refresh(self, folder: str) -> None:
        """Match the partition's files as they are now: one LIST, the index if stale, new files."""
        listed = self._listed(folder)
        index = self._by_folder.get(folder)
        if index is None or not all(index.covered(n, s) for n, s in listed.items()):
            persisted = self._load(folder)
            index = persisted or index or PartitionIndex()
        self._bring_current(folder, index, listed)
        self._keep(folder, index)

    def duplicates(self, folder: str, own_file: str, event_ids: pl.Series) -> pl.Series:
        """Those of ``event_ids`` in the partition's other files (after ``refresh``)."""
        index = self._by_folder.get(folder)
        if index is None:
            self.refresh(folder)
            index = self._by_folder[folder]
        return index.held_apart_from(posixpath.basename(own_file), event_ids)

    def holds_file(self, folder: str, path: str) -> bool:
        """Whether ``path`` was in the partition's listing at the last ``refresh``."""
        return posixpath.basename(path) in self._index(folder).covers

    def wrote(self, folder: str, path: str, event_ids: pl.Series, size: int) -> None:
        """``path`` (``size`` bytes) now holds ``event_ids``; persist with ``save``."""
        self._index(folder).add(posixpath.basename(path), size, event_ids)

    def forget(self, folder: str, path: str) -> None:
        """``path`` was removed (its events are held by other files)."""
        self._index(folder).vanish([posixpath.basename(path)])

    def save(self, folder: str) -> None:
        """Write the partition's index if it changed (under the partition's lease, after data)."""
        index = self._index(folder)
        if not index.changed:
            return
        self._dest.write_atomically(self.index_path(folder), index.to_parquet())
        index.changed = False
        self.stats["index_writes"] += 1

    # Keeping the indexes current

    def _bring_current(self, folder: str, index: PartitionIndex, listed: dict[str, int]) -> None:
        index.vanish([n for n in list(index.covers) if not index.covered(n, listed.get(n, -1))])
        new = [(n, s) for n, s in listed.items() if not index.covered(n, s)]
        compacted = [(n, s) for n, s in new if n.startswith(COMPACTED_PREFIX)]
        for name, size in new:
            if (name, size) not in compacted:
                index.add(name, size, self._read_ids(posixpath.join(folder, name)))
        if compacted and not self._adopted(folder, index, compacted):
            for name, size in compacted:
                index.add(name, size, self._read_ids(posixpath.join(folder, name)))

    def _adopted(
        self, folder: str, index: PartitionIndex, compacted: list[tuple[str, int]]
    ) -> bool:
        """Cover compacted files without reading them, when their footers prove it safe.

        Compaction rewrites files into new ones and drops only repeated eventIDs, and no
        writer removes an eventID from the table otherwise. So the IDs known only from
        vanished files (orphans) are all in files the index does not cover: here, the
        compacted ones. If those hold exactly as many distinct IDs (non-null rows, from
        their footers) as there are orphans, they hold the orphans and nothing else.
        """
        orphans = index.orphans().len()
        if orphans == 0:
            return False
        held = 0
        for name, size in compacted:
            found = self._distinct_ids_in(posixpath.join(folder, name), size)
            if found is None:
                return False
            held += found
        if held != orphans:
            return False
        index.adopt(compacted)
        self.stats["files_adopted"] += len(compacted)
        return True

    def _distinct_ids_in(self, path: str, size: int) -> int | None:
        """Non-null eventIDs of a compacted file (distinct: compaction keeps one of each)."""
        metadata = _footer(self._dest, path, size)
        if metadata is None:
            return None
        names = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
        if DEDUP_COLUMN not in names:
            return None
        column = names.index(DEDUP_COLUMN)
        nulls = 0
        for group in range(metadata.num_row_groups):
            statistics = metadata.row_group(group).column(column).statistics
            if statistics is None or not statistics.has_null_count:
                return None
            nulls += statistics.null_count
        return int(metadata.num_rows - nulls)

    # Storage and memory

    def _listed(self, folder: str) -> dict[str, int]:
        if not self._dest.is_s3 and not self._dest.exists(folder):
            return {}
        return {
            posixpath.basename(stored.path): stored.size
            for stored in self._dest.list_files(folder)
            if stored.path.endswith(".parquet")
        }

    def _load(self, folder: str) -> PartitionIndex | None:
        found = self._dest.read_versioned(self.index_path(folder))
        self.stats["index_reads"] += 1
        if found is None:
            return None
        try:
            return PartitionIndex.from_parquet(found[0])
        except (OSError, ValueError, KeyError, pa.ArrowException) as error:
            # Never trusted blindly: an unreadable index is rebuilt from the files.
            log.warning("index %s unreadable, rebuilt: %s", self.index_path(folder), error)
            return None

    def _read_ids(self, path: str) -> pl.Series:
        import pyarrow.dataset as ds  # noqa: PLC0415 - 60 ms of imports: only when read

        table = ds.dataset(path, filesystem=self._dest.fs, format="parquet")
        ids = pl.from_arrow(table.to_table(columns=[DEDUP_COLUMN]).column(DEDUP_COLUMN))
        assert isinstance(ids, pl.Series)
        self.stats["files_read"] += 1
        return ids.drop_nulls()

    def _index(self, folder: str) -> PartitionIndex:
        if folder not in self._by_folder:
            self.refresh(folder)
        return self._by_folder[folder]

    def _keep(self, folder: str, index: PartitionIndex) -> None:
        self._by_folder[folder] = index
        self._by_folder.move_to_end(folder)
        while len(self._by_folder) > 1 and (
            sum(i.ids.height for i in self._by_folder.values()) > self.MAX_EVENT_IDS
        ):
            self._by_folder.popitem(last=False)


def _footer(dest: Storage, path: str, size: int) -> pq.FileMetaData | None:
    """A Parquet file's footer from one ranged read of its end (two if the footer is large)."""
    tail = dest.fs.cat_file(path, start=max(0, size - _FOOTER_TAIL), end=size)
    if len(tail) < 12 or tail[-4:] != b"PAR1":
        return None
    length = int.from_bytes(tail[-8:-4], "little")
    if length + 8 > len(tail):
        tail = dest.fs.cat_file(path, start=max(0, size - length - 8), end=size)
    try:
        return pq.read_metadata(pa.BufferReader(b"PAR1" + tail[-(length + 8) :]))
    except (OSError, pa.ArrowException):
        return None
