"""Writing a partition: zstd, sorted by event time, schema version, stable names."""

from __future__ import annotations

import io
import json

import msgspec
import pyarrow.parquet as pq

from schemas.cloudtrail import COLUMNS, SCHEMA_VERSION
from schemas.derive import SCHEMA_VERSION_METADATA_KEY, arrow_schema
from transforms.events import place_events
from transforms.parquet import batch_id, part_file_name, to_parquet
from transforms.records import RecordRows, read_records


def events(times: list[str]):
    decoded = RecordRows()
    spans = [
        msgspec.Raw(msgspec.json.encode({"eventID": str(i), "eventTime": t, "awsRegion": "r"}))
        for i, t in enumerate(times)
    ]
    read_records(spans, "k", decoded)
    return place_events(decoded, ["r"]).events


def test_files_are_zstd_sorted_by_time_with_small_row_groups_and_the_schema():
    times = [f"2024-01-05T{h:02d}:{m:02d}:00Z" for h in (5, 1, 3) for m in range(20)]
    data = to_parquet(events(times), row_group_rows=16)
    parquet = pq.ParquetFile(io.BytesIO(data))
    table = parquet.read()
    assert table.column("eventtime").to_pylist() == sorted(times)
    assert parquet.metadata.num_row_groups == 4
    assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"
    assert table.schema.names == [c.name for c in COLUMNS]  # partition keys live in the path
    # On disk (what Athena reads), the file's schema is the one the schema module derives.
    reference = io.BytesIO()
    pq.write_table(arrow_schema().empty_table(), reference)

    def columns_of(schema: pq.ParquetSchema) -> list[str]:
        return str(schema).splitlines()[2:]  # past the object repr and the root group's name

    assert columns_of(parquet.schema) == columns_of(pq.ParquetFile(reference).schema)
    metadata = parquet.metadata.metadata  # the footer key-value metadata
    assert metadata[SCHEMA_VERSION_METADATA_KEY.encode()] == SCHEMA_VERSION.encode()
    stats = parquet.metadata.row_group(0).column(table.schema.get_field_index("eventtimestamp"))
    assert stats.statistics.has_min_max


def test_timestamps_are_utc_microseconds_for_athena_and_hive():
    data = to_parquet(events(["2024-01-05T00:00:00Z"]))
    schema = pq.ParquetFile(io.BytesIO(data)).schema
    [column] = [
        schema.column(i) for i in range(len(schema)) if schema.column(i).path == "eventtimestamp"
    ]
    logical = json.loads(column.logical_type.to_json())
    assert (column.physical_type, logical["Type"]) == ("INT64", "Timestamp")
    assert (logical["isAdjustedToUTC"], logical["timeUnit"]) == (True, "microseconds")


def test_a_rerun_of_the_same_inputs_names_the_same_files():
    keys = ["AWSLogs/1/CloudTrail/r/2024/01/05/b.json.gz", "AWSLogs/1/CloudTrail/r/2024/01/05/a"]
    assert batch_id(keys) == batch_id(reversed(keys))
    assert batch_id(keys) != batch_id(keys[:1])
    assert part_file_name(batch_id(keys)).startswith("part-")
    assert part_file_name(batch_id(keys)).endswith(".parquet")


def test_a_file_streamed_in_parts_holds_what_one_written_whole_holds():
    from transforms.parquet import parquet_rows, streamed_parquet

    times = [f"2024-01-05T{h:02d}:{m:02d}:00Z" for h in (1, 3, 5) for m in range(20)]
    frame = events(times).sort("eventtimestamp")
    parts = [frame.slice(start, 7) for start in range(0, frame.height, 7)]
    data = streamed_parquet(parts, row_group_rows=16)
    whole = pq.ParquetFile(io.BytesIO(to_parquet(frame)))
    streamed = pq.ParquetFile(io.BytesIO(data))
    assert streamed.read().equals(whole.read())
    # What Athena reads: the same Parquet schema (past the repr and the root group's name).
    assert str(streamed.schema).splitlines()[2:] == str(whole.schema).splitlines()[2:]
    assert parquet_rows(data) == 60
    assert streamed.metadata.num_row_groups == 3  # parts gathered into groups of >= 16 rows
    assert streamed.schema_arrow.metadata[SCHEMA_VERSION_METADATA_KEY.encode()] == b"1"
    empty = pq.ParquetFile(io.BytesIO(streamed_parquet([])))
    assert empty.metadata.num_rows == 0
    assert empty.schema_arrow.names == whole.schema_arrow.names
