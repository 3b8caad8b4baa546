"""Glue registration over HTTP against the moto server: create, idempotent, widen, refuse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from flows.cli import EXIT_FAILED, EXIT_OK, EXIT_PROBLEMS, app
from flows.ingest import run_ingest
from flows.register import RegistrationError, register_table
from flows.settings import Settings
from schemas.catalog import SERDE, STANDARD_REGIONS
from schemas.cloudtrail import EVENTS
from schemas.derive import SCHEMA_VERSION_METADATA_KEY, glue_columns, hive_columns
from tests.compat import hand_made_records, insight_records, write_logs
from tests.unit.test_schema import covers, seed_columns

DEST = "s3://lake/cloudtrail"
THIS_YEAR = 2026


@pytest.fixture
def glue(s3):
    s3.client().create_bucket(Bucket="lake")
    return s3.client("glue")


@pytest.fixture
def lake_with_data(glue, tmp_path) -> str:
    """The hand-made records ingested into S3 (us-east-1 and eu-west-1, January 2024)."""
    write_logs(tmp_path, hand_made_records())
    assert run_ingest(str(tmp_path / "AWSLogs"), DEST, lookback_days=0).problems == []
    return DEST


def table_of(glue, name: str = "cloudtrail_logs"):
    return glue.get_table(DatabaseName="security", Name=name)["Table"]


def test_an_empty_destination_gets_a_table_ready_for_data(glue):
    done = register_table(DEST, database="security", table="cloudtrail_logs", this_year=THIS_YEAR)
    assert (done.action, done.database_created, done.problems) == ("created", True, [])
    table = table_of(glue)
    descriptor = table["StorageDescriptor"]
    assert descriptor["Location"] == "s3://lake/cloudtrail/events/"
    assert descriptor["SerdeInfo"]["SerializationLibrary"] == SERDE
    assert descriptor["Columns"] == glue_columns(EVENTS.columns)
    assert [k["Name"] for k in table["PartitionKeys"]] == ["region", "year", "month", "day"]
    parameters = table["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.region.values"].split(",") == list(STANDARD_REGIONS)
    assert parameters["projection.year.range"] == "2026,2027"
    assert parameters["storage.location.template"] == (
        "s3://lake/cloudtrail/events/region=${region}/year=${year}/month=${month}/day=${day}/"
    )
    assert parameters["EXTERNAL"] == "TRUE"


def test_every_seed_column_keeps_its_name_and_type_in_glue(lake_with_data, glue):
    register_table(lake_with_data, database="security", table="cloudtrail_logs")
    registered = {c["Name"]: c["Type"] for c in table_of(glue)["StorageDescriptor"]["Columns"]}
    for name, seed_type in seed_columns():
        assert covers(registered[name], seed_type), name


def test_a_second_call_changes_nothing(lake_with_data, glue):
    first = register_table(lake_with_data, database="security", table="cloudtrail_logs")
    before = table_of(glue)
    second = register_table(lake_with_data, database="security", table="cloudtrail_logs")
    assert (first.action, second.action, second.database_created) == ("created", "unchanged", False)
    assert table_of(glue) == before
    assert first.projection.regions == ("eu-west-1", "us-east-1")  # the regions present
    assert first.projection.first_year == 2024  # the oldest year present


def test_a_new_region_or_schema_version_updates_in_place_and_never_narrows(lake_with_data, glue):
    register_table(lake_with_data, database="security", table="cloudtrail_logs")
    widened = register_table(
        lake_with_data, database="security", table="cloudtrail_logs", regions=["ap-south-2"]
    )
    assert widened.action == "updated"
    assert widened.projection.regions == ("ap-south-2", "eu-west-1", "us-east-1")
    # Registered again without the configured region: it stays (an update only widens).
    again = register_table(lake_with_data, database="security", table="cloudtrail_logs")
    assert (again.action, again.projection.regions) == ("unchanged", widened.projection.regions)

    outdated = table_of(glue)
    parameters = {**outdated["Parameters"], SCHEMA_VERSION_METADATA_KEY: "0", "owner": "secops"}
    glue.update_table(
        DatabaseName="security",
        TableInput={
            "Name": "cloudtrail_logs",
            "TableType": "EXTERNAL_TABLE",
            "Parameters": parameters,
            "PartitionKeys": outdated["PartitionKeys"],
            "StorageDescriptor": {**outdated["StorageDescriptor"], "Columns": []},
        },
    )
    updated = register_table(lake_with_data, database="security", table="cloudtrail_logs")
    assert updated.action == "updated"
    table = table_of(glue)
    assert table["StorageDescriptor"]["Columns"] == glue_columns(EVENTS.columns)
    assert table["Parameters"][SCHEMA_VERSION_METADATA_KEY] == "1"
    assert table["Parameters"]["owner"] == "secops"  # other people's properties are kept


def test_data_projection_would_hide_is_reported(lake_with_data, glue, s3):
    client = s3.client()
    client.put_object(
        Bucket="lake", Key="cloudtrail/events/region=us-east-1/year=1999/month=01/day=01/p.parquet"
    )
    client.put_object(Bucket="lake", Key="cloudtrail/events/stray.parquet")
    done = register_table(
        lake_with_data, database="security", table="cloudtrail_logs", this_year=THIS_YEAR
    )
    assert {p.key: p.reason for p in done.problems} == {
        "s3://lake/cloudtrail/events/region=us-east-1/year=1999/month=01/day=01": (
            "not covered by the table's partition projection: "
            "year 1999 is outside the projected range 2013..2027"
        ),
        "s3://lake/cloudtrail/events/stray.parquet": (
            "file outside any region=/year=/month=/day= folder: invisible to Athena"
        ),
    }


def test_bad_input_is_refused_or_warned(glue, s3):
    with pytest.raises(RegistrationError, match="not a region name"):
        register_table(DEST, database="security", table="t", regions=["US East"])
    unknown = register_table(DEST, database="security", table="t", regions=["mars-north-1"])
    assert unknown.warnings == [
        "region 'mars-north-1' is not a known AWS region; projected all the same"
    ]
    assert unknown.projection.regions == ("mars-north-1",)
    with pytest.raises(RegistrationError, match="give an s3:// destination"):
        register_table("/tmp/lake", database="security", table="t")


def test_someone_elses_table_is_never_overwritten(glue):
    glue.create_database(DatabaseInput={"Name": "security"})
    glue.create_table(
        DatabaseName="security",
        TableInput={
            "Name": "cloudtrail_logs",
            "StorageDescriptor": {"Location": "s3://trail/AWSLogs/", "Columns": []},
        },
    )
    with pytest.raises(RegistrationError, match="not created by cloudtrail-parquet"):
        register_table(DEST, database="security", table="cloudtrail_logs")
    register_table(DEST, database="security", table="mine")
    with pytest.raises(RegistrationError, match="reads s3://lake/cloudtrail/events, not"):
        register_table("s3://lake/other", database="security", table="mine")


def test_the_register_command(glue):
    runner = CliRunner()
    args = ["register", DEST, "--database", "security", "--table", "ct", "--region", "eu-west-1"]
    first = runner.invoke(app, [*args, "--json"])
    assert first.exit_code == EXIT_OK, first.output
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert (summary["action"], summary["regions"], summary["problems_count"]) == (
        "created",
        ["eu-west-1"],
        0,
    )
    human = runner.invoke(app, args)
    assert human.exit_code == EXIT_OK
    assert "Glue table security.ct: unchanged (via glue)." in human.stdout
    bad = runner.invoke(app, ["register", DEST, "--database", "security", "--table", "ct",
                              "--region", "Nope!", "--json"])  # fmt: skip
    assert bad.exit_code == EXIT_FAILED
    assert json.loads(bad.stdout.strip().splitlines()[-1])["error"].startswith("RegistrationError")


def test_the_register_command_exits_3_when_data_would_be_hidden(glue, s3):
    s3.client().put_object(Bucket="lake", Key="cloudtrail/events/stray.parquet")
    result = CliRunner().invoke(
        app, ["register", DEST, "--database", "security", "--table", "ct", "--json"]
    )
    assert result.exit_code == EXIT_PROBLEMS
    assert json.loads(result.stdout.strip().splitlines()[-1])["problems_count"] == 1


def test_ingest_registers_its_tables_when_configured(glue, tmp_path):
    write_logs(tmp_path, hand_made_records())
    write_logs(tmp_path, insight_records(), kind="CloudTrail-Insight")
    settings = Settings(glue_database="security", glue_table="trail")
    first = run_ingest(str(tmp_path / "AWSLogs"), DEST, settings=settings, lookback_days=0)
    assert first.problems == []
    assert [(c["table"], c["action"]) for c in first.catalog] == [
        ("trail", "created"),
        ("trail_insights", "created"),
    ]
    assert table_of(glue, "trail_insights")["StorageDescriptor"]["Location"] == (
        "s3://lake/cloudtrail/insights/"
    )
    # Nothing new: Glue is asked, nothing registered.
    assert (
        run_ingest(str(tmp_path / "AWSLogs"), DEST, settings=settings, lookback_days=0).catalog
        == []
    )
    # A region the table does not project yet: the run widens the enum.
    write_logs(
        tmp_path,
        {"sa-east-1/2024/01/07": [{"eventID": "n1", "eventTime": "2024-01-07T00:00:00Z",
                                   "awsRegion": "sa-east-1", "eventName": "X"}]},
    )  # fmt: skip
    third = run_ingest(str(tmp_path / "AWSLogs"), DEST, settings=settings, lookback_days=0)
    assert [(c["table"], c["action"]) for c in third.catalog] == [("trail", "updated")]
    assert "sa-east-1" in table_of(glue, "trail")["Parameters"]["projection.region.values"]


def test_ingest_reports_a_failed_registration_as_a_problem(s3, tmp_path):
    write_logs(tmp_path, hand_made_records())
    settings = Settings(glue_database="security", glue_table="trail")
    summary = run_ingest(
        str(tmp_path / "AWSLogs"), str(tmp_path / "local"), settings=settings, lookback_days=0
    )
    assert summary.events_written > 0
    assert [p.key for p in summary.problems] == ["glue:security.trail"]
    assert "give an s3:// destination" in summary.problems[0].reason


def test_ddl_prints_the_table_without_importing_prefect(tmp_path):
    write_logs(tmp_path, hand_made_records())
    run_ingest(str(tmp_path / "AWSLogs"), str(tmp_path / "lake"), lookback_days=0)
    args = ["ddl", str(tmp_path / "lake"), "--database", "db"]
    program = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from flows.cli import app\n"
        f"result = CliRunner().invoke(app, {args!r})\n"
        "assert 'prefect' not in sys.modules, 'ddl imported Prefect'\n"
        "print(result.stdout, end='')\n"
        "sys.exit(result.exit_code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    ddl = result.stdout
    assert ddl.startswith("CREATE EXTERNAL TABLE `db`.`cloudtrail_logs` (")
    assert ddl.rstrip().endswith(");")
    assert f"LOCATION '{(tmp_path / 'lake' / 'events').as_uri()}/'" in ddl
    assert "'projection.region.values'='eu-west-1,us-east-1'" in ddl
    assert all(f"`{name}` {kind}" in ddl for name, kind in hive_columns(EVENTS.columns))


def test_ddl_of_an_empty_destination_projects_the_standard_regions(tmp_path: Path):
    result = CliRunner().invoke(app, ["ddl", str(tmp_path), "--kind", "insights"])
    assert result.exit_code == EXIT_OK
    assert f"'projection.region.values'='{','.join(STANDARD_REGIONS)}'" in result.stdout
    assert f"LOCATION '{(tmp_path / 'insights').as_uri()}/'" in result.stdout


def athena_statements(s3) -> list[str]:
    """What the moto server's Athena was asked to run, in order (moto runs no DDL)."""
    athena = s3.client("athena")
    ids = athena.list_query_executions(WorkGroup="primary")["QueryExecutionIds"]
    executions = [athena.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in ids]
    executions.sort(key=lambda e: e["Status"]["SubmissionDateTime"])
    return [e["Query"] for e in executions]


def test_register_through_an_athena_workgroup_runs_the_printed_ddl(lake_with_data, glue, s3):
    result = CliRunner().invoke(
        app,
        ["register", DEST, "--database", "security", "--table", "ct", "--json",
         "--athena-workgroup", "primary", "--athena-output", "s3://lake/athena-results/"],
    )  # fmt: skip
    assert result.exit_code == EXIT_OK, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["action"], summary["via"], summary["database_created"]) == (
        "created",
        "athena",
        True,
    )
    printed = CliRunner().invoke(app, ["ddl", DEST, "--database", "security", "--table", "ct"])
    assert athena_statements(s3) == [
        "CREATE DATABASE IF NOT EXISTS `security`",
        printed.stdout.rstrip().removesuffix(";"),
    ]


def test_an_athena_update_widens_the_properties_and_never_rewrites_columns(
    lake_with_data, glue, s3
):
    from flows.register import AthenaDDL

    register_table(lake_with_data, database="security", table="ct", this_year=THIS_YEAR)
    athena = AthenaDDL("primary", client=s3.client("athena"))
    done = register_table(
        lake_with_data,
        database="security",
        table="ct",
        regions=["ap-south-2"],
        this_year=THIS_YEAR,
        athena=athena,
    )
    assert (done.action, done.via) == ("updated", "athena")
    [statement] = athena_statements(s3)
    assert statement.startswith("ALTER TABLE `security`.`ct` SET TBLPROPERTIES (")
    assert "'projection.region.values'='ap-south-2,eu-west-1,us-east-1'" in statement
    assert athena.statements == [statement]

    outdated = table_of(glue, "ct")
    glue.update_table(
        DatabaseName="security",
        TableInput={
            "Name": "ct",
            "TableType": "EXTERNAL_TABLE",
            "Parameters": outdated["Parameters"],
            "PartitionKeys": outdated["PartitionKeys"],
            "StorageDescriptor": {**outdated["StorageDescriptor"], "Columns": []},
        },
    )
    with pytest.raises(RegistrationError, match="update it through Glue"):
        register_table(lake_with_data, database="security", table="ct", athena=athena)


def test_ingest_can_register_through_athena(glue, s3, tmp_path):
    write_logs(tmp_path, hand_made_records())
    settings = Settings(glue_database="security", glue_table="trail", athena_workgroup="primary")
    summary = run_ingest(str(tmp_path / "AWSLogs"), DEST, settings=settings, lookback_days=0)
    assert [(c["table"], c["action"], c["via"]) for c in summary.catalog] == [
        ("trail", "created", "athena")
    ]
    statements = athena_statements(s3)
    assert statements[0] == "CREATE DATABASE IF NOT EXISTS `security`"
    assert statements[1].startswith("CREATE EXTERNAL TABLE `security`.`trail` (")
