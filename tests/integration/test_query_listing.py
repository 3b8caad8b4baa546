"""``ctparquet query`` lists only the partition folders the SQL can read, once: DuckDB
reads the files it is given and lists nothing again."""

from __future__ import annotations

import pytest
import sqlglot

from flows.ingest import run_ingest
from flows.query import partition_filters, query_storage, to_duckdb_sql
from flows.storage import Storage
from tests.compat import hand_made_records, write_logs
from tests.fault_proxy import s3_through_proxy

DEST = "s3://lake/ct"
PARTITIONS = [
    ("eu-west-1", "2024", "01", "05"),
    ("us-east-1", "2024", "01", "05"),
    ("us-east-1", "2024", "01", "06"),
]


def anything(_: str) -> bool:
    return True


def admitted(sql: str) -> list[tuple[str, ...]]:
    """The partitions of ``PARTITIONS`` the filters of ``sql`` admit."""
    tests = partition_filters(sqlglot.parse_one(to_duckdb_sql(sql), read="duckdb"))
    keys = ("region", "year", "month", "day")
    return [
        p
        for p in PARTITIONS
        if all(tests.get(k, anything)(v) for k, v in zip(keys, p, strict=True))
    ]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("", PARTITIONS),
        ("WHERE region = 'us-east-1'", PARTITIONS[1:]),
        ("WHERE 'us-east-1' = region AND day = '05'", PARTITIONS[1:2]),
        ("WHERE region IN ('eu-west-1', 'ap-south-1')", PARTITIONS[:1]),
        ("WHERE t.day >= '06' AND eventname = 'x'", PARTITIONS[2:]),
        ("WHERE day < '06'", PARTITIONS[:2]),
        ("WHERE day BETWEEN '04' AND '05'", PARTITIONS[:2]),
        ("WHERE (region = 'eu-west-1') AND year = '2024' AND month = '01'", PARTITIONS[:1]),
        # Not sure to hold for every row the query reads: no filter.
        ("WHERE region = 'eu-west-1' OR eventname = 'x'", PARTITIONS),
        ("WHERE NOT region = 'eu-west-1'", PARTITIONS),
        ("WHERE year = 2024", PARTITIONS),  # a number: the engine's cast, not ours
        ("WHERE other.region = 'eu-west-1'", PARTITIONS),  # another relation's column
    ],
)
def test_the_filters_found_in_the_sql(where, expected):
    assert admitted(f"SELECT eventid FROM cloudtrail_logs t {where}") == expected


def test_a_query_reading_the_table_twice_gets_no_filter():
    sql = (
        "SELECT a.eventid FROM cloudtrail_logs a JOIN cloudtrail_logs b ON a.eventid = b.eventid "
        "WHERE a.region = 'eu-west-1'"
    )
    assert admitted(sql) == PARTITIONS


@pytest.fixture
def lake(s3, tmp_path):
    s3.client().create_bucket(Bucket="lake")
    write_logs(tmp_path, hand_made_records())
    assert run_ingest(str(tmp_path / "AWSLogs"), DEST, lookback_days=0).problems == []
    return s3


def listed_prefixes(lake, sql: str) -> tuple[list[str], list[dict]]:
    with s3_through_proxy(lake.url) as proxy:
        result = query_storage(Storage(DEST), sql)
        prefixes = [
            r.query.get("prefix", [""])[0]
            for r in proxy.requests
            if r.method == "GET" and "list-type" in r.query
        ]
    return prefixes, result.table.to_pylist()


def test_a_day_filter_lists_only_that_days_folders(lake):
    everything, all_rows = listed_prefixes(lake, "SELECT eventid, region, day FROM t")
    assert everything == ["ct/events/"]  # one listing of the table; DuckDB lists nothing again

    sql = "SELECT eventid, region, day FROM t WHERE region = 'us-east-1' AND day = '05'"
    prefixes, rows = listed_prefixes(lake, sql)
    assert prefixes == [
        "ct/events/",
        "ct/events/region=us-east-1/",
        "ct/events/region=us-east-1/year=2024/",
        "ct/events/region=us-east-1/year=2024/month=01/",
        "ct/events/region=us-east-1/year=2024/month=01/day=05/",
    ]
    assert sorted(r["eventid"] for r in rows) == sorted(
        r["eventid"] for r in all_rows if (r["region"], r["day"]) == ("us-east-1", "05")
    )
    assert rows


def test_a_filter_that_matches_no_folder_answers_empty(lake):
    prefixes, rows = listed_prefixes(lake, "SELECT eventid FROM t WHERE region = 'xx-none-1'")
    assert rows == [] and prefixes == ["ct/events/"]
