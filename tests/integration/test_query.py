"""Athena SQL run locally over the table: the seed's queries, table-name resolution, errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flows.cli import EXIT_FAILED, app
from flows.ingest import run_ingest
from flows.query import NoTableError, run_query, to_duckdb_sql
from tests.compat import SEED_ANONYMOUS_S3, SEED_TEMPLATE  # the seed's two queries


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    root: Path = tmp_path_factory.mktemp("q")
    key = root / "AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/06/f.json.gz"
    key.parent.mkdir(parents=True)
    anonymous = {"type": "AWSAccount", "principalId": "", "accountId": "ANONYMOUS_PRINCIPAL"}
    records = [
        {"eventID": "a", "eventTime": "2024-01-05T23:59:00Z", "awsRegion": "us-east-1",
         "eventSource": "s3.amazonaws.com", "eventName": "GetObject", "userIdentity": anonymous,
         "requestParameters": {"bucketName": "[your bucket name ]", "key": "x"}, "readOnly": True},
        {"eventID": "b", "eventTime": "2024-01-06T00:01:00Z", "awsRegion": "us-east-1",
         "eventSource": "s3.amazonaws.com", "eventName": "GetObject",
         "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/u", "accountId": "1"},
         "requestParameters": {"bucketName": "[your bucket name ]"}, "readOnly": True},
    ]  # fmt: skip
    key.write_bytes(gzip.compress(json.dumps({"Records": records}).encode()))
    run_ingest(str(root / "AWSLogs"), str(root / "lake"), lookback_days=0)
    return root / "lake"


def test_the_seed_queries_run_unchanged(table):
    anonymous = run_query(str(table), SEED_ANONYMOUS_S3).table.to_pylist()
    assert [row["eventid"] for row in anonymous] == ["a"]
    assert anonymous[0]["day"] == "05"  # partitioned by event time, not by the 06 folder
    template = run_query(str(table), SEED_TEMPLATE).table
    assert template.column_names == ["arn", "eventname", "sourceipaddress", "eventtime"]
    assert sorted(template.column("eventtime").to_pylist()) == [
        "2024-01-05T23:59:00Z",
        "2024-01-06T00:01:00Z",
    ]


def test_partition_filters_are_strings_as_on_the_standard_table(table):
    result = run_query(
        str(table),
        "SELECT count(*) AS n FROM cloudtrail_logs "
        "WHERE region = 'us-east-1' AND year = '2024' AND month = '01' AND day = '05'",
    )
    assert result.table.to_pylist() == [{"n": 1}]


def test_any_table_name_means_the_events_table_but_ctes_stay():
    sql = to_duckdb_sql("WITH x AS (SELECT my_trail.eventid FROM my_trail) SELECT * FROM x")
    # The name stays as an alias, so qualified columns (my_trail.eventid) still resolve.
    assert "FROM cloudtrail_events AS my_trail" in sql
    assert sql.endswith("SELECT * FROM x")


def test_a_destination_without_a_table_says_so(tmp_path):
    with pytest.raises(NoTableError, match="ctparquet ingest"):
        run_query(str(tmp_path), "SELECT 1")


def test_cli_formats(table):
    runner = CliRunner()
    aligned = runner.invoke(app, ["query", str(table), "SELECT eventid FROM t ORDER BY 1"])
    assert aligned.exit_code == 0
    assert aligned.stdout.splitlines() == ["eventid", "-------", "a", "b"]
    csv = runner.invoke(app, ["query", str(table), "SELECT eventid FROM t", "--format", "csv"])
    assert csv.stdout.splitlines()[0] == "eventid"
    summary = runner.invoke(
        app, ["query", str(table), "SELECT eventid FROM t ORDER BY 1", "--json"]
    )
    last = json.loads(summary.stdout.strip().splitlines()[-1])
    assert last["rows"] == [{"eventid": "a"}, {"eventid": "b"}]
    bad = runner.invoke(app, ["query", str(table), "SELEC nope", "--json"])
    assert bad.exit_code == EXIT_FAILED
    assert json.loads(bad.stdout.strip().splitlines()[-1])["error"].startswith("QueryError")
