"""The printed DDL runs unchanged in a Hive-compatible engine, and answers as the raw JSON.

Spark SQL with Hive support (a local Derby metastore) executes the statement
``ctparquet ddl`` prints, over tables our pipeline wrote; ``MSCK REPAIR TABLE``
then loads the partitions, which Hive finds by listing (Athena projects them).
The seed's queries and the security questions, translated from Athena SQL by
sqlglot where the dialects differ (UNNEST), return the raw records' answers.

One Spark session serves every test here (a JVM start costs ≈ 11-13 s), and the
suite runs with ``--dist loadfile`` so all of them run in one xdist worker.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from click.testing import CliRunner

from flows.cli import app
from flows.ingest import run_ingest
from schemas.catalog import table_properties
from schemas.cloudtrail import EVENTS
from schemas.derive import hive_columns, partition_columns
from schemas.hunts import BEGINNING, RESULT_COLUMNS, load_pack
from schemas.insights import INSIGHTS
from tests.compat import (
    Question,
    assert_same_answer,
    hand_made_records,
    insight_records,
    questions,
    raw_records,
    write_logs,
)

pytestmark = pytest.mark.slow

HAND_MADE_DAY = ("us-east-1", "2024", "01", "05")
REAL_DAY = ("us-east-1", "2023", "07", "10")


@pytest.fixture(scope="session")
def spark(tmp_path_factory) -> Iterator[Any]:
    if shutil.which("java") is None:
        pytest.fail("Java 17+ is needed to run Spark (the Hive-compatible engine of this test)")
    from pyspark.sql import SparkSession

    home = tmp_path_factory.mktemp("spark")
    session = (
        SparkSession.builder.master("local[1]")
        .appName("ctparquet-ddl")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", str(home / "warehouse"))
        .config(
            "spark.hadoop.javax.jdo.option.ConnectionURL",
            f"jdbc:derby:;databaseName={home / 'metastore'};create=true",
        )
        .config(
            "spark.driver.extraJavaOptions",
            f"-Dderby.system.home={home} -XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        )
        # The statement is sent as printed; Spark, like the Hive CLI, would otherwise expand
        # ${region} in storage.location.template as a client variable (Athena never does).
        .config("spark.sql.variable.substitute", "false")
        .enableHiveSupport()
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def printed_ddl(dest: Path, table: str, kind: str = "events") -> str:
    """The statement exactly as ``ctparquet ddl`` prints it, less the client's terminator."""
    result = CliRunner().invoke(app, ["ddl", str(dest), "--table", table, "--kind", kind])
    assert result.exit_code == 0, result.output
    return result.stdout.rstrip().removesuffix(";")


def create_table(spark: Any, dest: Path, table: str, kind: str = "events") -> str:
    statement = printed_ddl(dest, table, kind)
    spark.sql(f"DROP TABLE IF EXISTS {table}")
    spark.sql(statement)
    spark.sql(f"MSCK REPAIR TABLE {table}")
    return statement


def rows(spark: Any, athena_sql: str, table: str) -> list[dict[str, Any]]:
    """Run Athena SQL in Spark: sqlglot translates what differs (UNNEST -> LATERAL VIEW)."""
    sql = sqlglot.transpile(athena_sql, read="athena", write="spark")[0]
    return [row.asDict() for row in spark.sql(sql.replace("cloudtrail_logs", table)).collect()]


@pytest.fixture(scope="module")
def hand_made_table(spark, tmp_path_factory) -> tuple[str, list[dict], str]:
    root: Path = tmp_path_factory.mktemp("hive-hand")
    write_logs(root, hand_made_records())
    assert run_ingest(str(root / "AWSLogs"), str(root / "lake"), lookback_days=0).problems == []
    statement = create_table(spark, root / "lake", "hand_made_logs")
    return "hand_made_logs", raw_records(root / "AWSLogs"), statement


@pytest.fixture(scope="module")
def real_table(shared_data, spark, tmp_path_factory) -> tuple[str, list[dict]]:
    logs = shared_data / "invictus-ir" / "AWSLogs"
    lake = tmp_path_factory.mktemp("hive-real") / "lake"
    assert run_ingest(str(logs), str(lake), lookback_days=0).problems == []
    create_table(spark, lake, "real_logs")
    return "real_logs", raw_records(logs)


def test_the_table_has_our_columns_partitions_and_properties(spark, hand_made_table):
    table, _, statement = hand_made_table
    described = spark.sql(f"DESCRIBE {table}").collect()
    data_columns = []
    for row in described:
        if row.col_name.startswith("#"):
            break
        data_columns.append((row.col_name, row.data_type))
    assert data_columns == hive_columns(EVENTS.columns) + partition_columns()
    partitions = [r.partition for r in spark.sql(f"SHOW PARTITIONS {table}").collect()]
    assert sorted(partitions) == [
        "region=eu-west-1/year=2024/month=01/day=05",
        "region=us-east-1/year=2024/month=01/day=05",
        "region=us-east-1/year=2024/month=01/day=06",
    ]
    properties = {r.key: r.value for r in spark.sql(f"SHOW TBLPROPERTIES {table}").collect()}
    location = statement.split("LOCATION '", 1)[1].split("'", 1)[0]
    ours = table_properties(location.rstrip("/"), _projection_in(statement))
    assert {k: properties.get(k) for k in ours} == ours


def _projection_in(statement: str) -> Any:
    from schemas.catalog import projection_of

    found = dict(
        line.strip().rstrip(",").replace("'", "").split("=", 1)
        for line in statement.split("TBLPROPERTIES (", 1)[1].splitlines()
        if "=" in line
    )
    return projection_of(found)


@pytest.mark.parametrize("question", questions(HAND_MADE_DAY), ids=lambda q: q.name)
def test_hand_made_records_answer_as_the_raw_json(spark, hand_made_table, question: Question):
    table, records, _ = hand_made_table
    assert_same_answer(rows(spark, question.sql, table), question, records)


@pytest.mark.parametrize("question", questions(REAL_DAY), ids=lambda q: q.name)
def test_real_samples_answer_as_the_raw_json(spark, real_table, question: Question):
    table, records = real_table
    assert_same_answer(rows(spark, question.sql, table), question, records)


def test_the_insights_ddl_runs_and_reads_the_insights_table(spark, tmp_path):
    write_logs(tmp_path, insight_records(), kind="CloudTrail-Insight")
    summary = run_ingest(str(tmp_path / "AWSLogs"), str(tmp_path / "lake"), lookback_days=0)
    assert summary.insight_events_written == 2
    create_table(spark, tmp_path / "lake", "insights_logs", kind="insights")
    described = [(r.col_name, r.data_type) for r in spark.sql("DESCRIBE insights_logs").collect()]
    assert described[: len(INSIGHTS.columns)] == hive_columns(INSIGHTS.columns)
    got = rows(
        spark,
        "SELECT eventid, insightdetails.state, insightdetails.errorcode, day "
        "FROM cloudtrail_logs ORDER BY eventid",
        "insights_logs",
    )
    assert got == [
        {"eventid": "i01", "state": "Start", "errorcode": "AccessDenied", "day": "05"},
        {"eventid": "i02", "state": "End", "errorcode": "AccessDenied", "day": "05"},
    ]


# --- The hunting pack (issue 14) in the Hive-compatible engine ---------------------------


@pytest.fixture(scope="module")
def hunt_lake(spark, shared_data, tmp_path_factory) -> tuple[str, dict[str, set[str]]]:
    """The real samples as a Spark table, and each question's answer from ``ctparquet hunt``."""
    from flows.hunting import run_hunt

    lake = tmp_path_factory.mktemp("hive-hunt") / "lake"
    logs = str(shared_data / "invictus-ir" / "AWSLogs")
    assert run_ingest(logs, str(lake), lookback_days=0).problems == []
    create_table(spark, lake, "hunt_logs")
    local = run_hunt(str(lake))
    assert local.problems == []
    return "hunt_logs", {f.hunt.name: set(f.event_ids) for f in local.findings}


@pytest.mark.parametrize("hunt", load_pack(), ids=lambda h: h.name)
def test_every_pack_question_answers_in_spark_as_in_duckdb(spark, hunt_lake, hunt):
    table, local = hunt_lake
    answer = rows(spark, hunt.render({"window_start": BEGINNING}), table)
    assert {r["eventid"] for r in answer} == local.get(hunt.name, set())
    assert all(set(r) >= set(RESULT_COLUMNS) for r in answer)
