"""Insights objects become their own table, queried locally like the events table."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from flows.cli import EXIT_OK, app
from flows.ingest import run_ingest
from flows.query import NoTableError, run_query
from tests.compat import hand_made_records, insight_records, write_logs
from tests.helpers import read_table


def test_insights_objects_are_converted_into_the_insights_table(tmp_path):
    write_logs(tmp_path, hand_made_records())
    write_logs(tmp_path, insight_records(), kind="CloudTrail-Insight")
    lake = tmp_path / "lake"
    summary = run_ingest(str(tmp_path / "AWSLogs"), str(lake), lookback_days=0)
    assert summary.problems == []
    assert summary.insight_events_written == 2
    assert summary.events_written == 10  # e04's redelivery dropped
    assert "insight" not in summary.objects_skipped
    assert summary.as_json()["insights_table"] == str(lake / "insights")
    assert (lake / "insights/region=us-east-1/year=2024/month=01/day=05").is_dir()

    table = read_table(lake / "insights")
    assert sorted(table["eventid"]) == ["i01", "i02"]
    end = table.filter(table["eventid"] == "i02").row(0, named=True)
    assert end["insightdetails"]["state"] == "End"
    assert json.loads(end["insightdetails"]["insightcontext"])["statistics"]["insightDuration"] == 4
    assert json.loads(end["unmapped"]) == {"insightDetails": {"newDetail": "kept in unmapped"}}
    assert "i01" not in set(read_table(lake / "events")["eventid"])

    again = run_ingest(str(tmp_path / "AWSLogs"), str(lake), lookback_days=0)
    assert again.objects_converted == 0  # closed day folders: not even listed again
    assert again.insight_events_written == 0


def test_query_kind_insights(tmp_path):
    write_logs(tmp_path, insight_records(), kind="CloudTrail-Insight")
    lake = tmp_path / "lake"
    run_ingest(str(tmp_path / "AWSLogs"), str(lake), lookback_days=0)
    sql = (
        "SELECT insightdetails.state AS state, insightdetails.eventname AS api "
        "FROM cloudtrail_insights WHERE insightdetails.insighttype = 'ApiErrorRateInsight' "
        "ORDER BY eventtime"
    )
    assert run_query(str(lake), sql, kind="insights").table.to_pylist() == [
        {"state": "Start", "api": "AttachUserPolicy"},
        {"state": "End", "api": "AttachUserPolicy"},
    ]
    result = CliRunner().invoke(
        app, ["query", str(lake), "SELECT count(*) AS n FROM t", "--kind", "insights", "--json"]
    )
    assert result.exit_code == EXIT_OK
    assert json.loads(result.stdout.strip().splitlines()[-1])["rows"] == [{"n": 2}]
    # Only Insights here: the events table does not exist, and the message says so.
    with pytest.raises(NoTableError, match="no events table here yet"):
        run_query(str(lake), "SELECT 1")


def test_a_destination_without_insights_says_where_they_come_from(tmp_path):
    with pytest.raises(NoTableError, match="CloudTrail-Insight/ objects"):
        run_query(str(tmp_path), "SELECT 1", kind="insights")
