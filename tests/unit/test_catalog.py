"""The catalog definition: DDL and Glue TableInput derived from one schema and projection."""

from __future__ import annotations

import re

import boto3
import pytest
import sqlglot

from schemas.catalog import (
    INPUT_FORMAT,
    OUTPUT_FORMAT,
    SERDE,
    STANDARD_REGIONS,
    TABLES,
    CatalogDefinitionError,
    Projection,
    create_table_ddl,
    glue_table_input,
    location_template,
    projection_for,
    projection_of,
    table_properties,
    uncovered,
)
from schemas.cloudtrail import EVENTS, SCHEMA_VERSION
from schemas.derive import glue_columns, hive_columns, partition_columns
from schemas.insights import INSIGHTS
from transforms.keys import partition_path

LOCATION = "s3://lake/cloudtrail/events"
PROJECTION = Projection(("eu-west-1", "us-east-1"), 2023, 2027)


@pytest.mark.parametrize("schema", TABLES.values(), ids=lambda s: s.name)
def test_ddl_and_glue_are_the_same_table(schema):
    ddl = create_table_ddl(schema, table="t", location=LOCATION, projection=PROJECTION)
    glue = glue_table_input(schema, table="t", location=LOCATION, projection=PROJECTION)
    # Columns: names and Hive types in file order, in both.
    ddl_columns = re.findall(
        r"^  `(\w+)` (\S+?)(?: COMMENT '.*')?,?$", ddl.split("PARTITIONED BY")[0], re.MULTILINE
    )
    assert ddl_columns == hive_columns(schema.columns)
    assert [(c["Name"], c["Type"]) for c in glue["StorageDescriptor"]["Columns"]] == ddl_columns
    assert glue["StorageDescriptor"]["Columns"] == glue_columns(schema.columns)
    # Partition keys, storage, location.
    assert "PARTITIONED BY (`region` string, `year` string, `month` string, `day` string)" in ddl
    assert [(k["Name"], k["Type"]) for k in glue["PartitionKeys"]] == partition_columns()
    assert f"ROW FORMAT SERDE '{SERDE}'" in ddl
    assert f"STORED AS INPUTFORMAT '{INPUT_FORMAT}'\nOUTPUTFORMAT '{OUTPUT_FORMAT}'" in ddl
    descriptor = glue["StorageDescriptor"]
    assert descriptor["SerdeInfo"]["SerializationLibrary"] == SERDE
    assert (descriptor["InputFormat"], descriptor["OutputFormat"]) == (INPUT_FORMAT, OUTPUT_FORMAT)
    assert f"LOCATION '{LOCATION}/'" in ddl
    assert descriptor["Location"] == LOCATION + "/"
    # Table properties: the same in both; Glue marks the table EXTERNAL as Athena's DDL does.
    properties = dict(re.findall(r"^  '([^']+)'='([^']*)'", ddl, re.MULTILINE))
    assert glue["Parameters"] == {"EXTERNAL": "TRUE", **properties}
    assert glue["TableType"] == "EXTERNAL_TABLE"


def test_the_projection_properties():
    properties = table_properties(LOCATION, PROJECTION)
    assert properties == {
        "classification": "parquet",
        "parquet.compression": "ZSTD",
        "projection.enabled": "true",
        "projection.region.type": "enum",  # not injected: queries need not name a region
        "projection.region.values": "eu-west-1,us-east-1",
        "projection.year.type": "integer",
        "projection.year.range": "2023,2027",
        "projection.year.digits": "4",
        "projection.month.type": "integer",
        "projection.month.range": "1,12",
        "projection.month.digits": "2",
        "projection.day.type": "integer",
        "projection.day.range": "1,31",
        "projection.day.digits": "2",
        "storage.location.template": (
            "s3://lake/cloudtrail/events/region=${region}/year=${year}/month=${month}/day=${day}/"
        ),
        "cloudtrail_parquet.schema_version": SCHEMA_VERSION,
    }
    assert projection_of(properties) == PROJECTION


def test_the_location_template_is_where_the_writer_puts_a_partition():
    template = location_template(LOCATION + "/")
    values = {"region": "us-east-1", "year": "2024", "month": "01", "day": "05"}
    projected = template
    for key, value in values.items():
        projected = projected.replace(f"${{{key}}}", value)
    assert projected == f"{LOCATION}/{partition_path(*values.values())}/"


def test_the_ddl_is_hive_ddl():
    ddl = create_table_ddl(
        EVENTS,
        table="cloudtrail_logs",
        database="security",
        location=LOCATION,
        projection=PROJECTION,
    )
    assert ddl.startswith("CREATE EXTERNAL TABLE `security`.`cloudtrail_logs` (\n")
    parsed = sqlglot.parse_one(ddl, read="hive")
    assert isinstance(parsed, sqlglot.exp.Create)
    assert parsed.args["kind"] == "TABLE"


def test_comments_are_escaped_hive_literals():
    ddl = create_table_ddl(EVENTS, table="t", location=LOCATION, projection=PROJECTION)
    assert "`readonly` string COMMENT '\\'true\\' or \\'false\\', as on the raw table.'" in ddl


@pytest.mark.parametrize(
    ("regions", "years", "expected"),
    [
        # An empty table projects the standard regions, this year and next.
        ([], [], Projection(STANDARD_REGIONS, 2026, 2027)),
        # Present (and configured) regions only; from the oldest year present.
        (["us-east-1", "eu-west-1", "us-east-1"], [2023, 2025],
         Projection(("eu-west-1", "us-east-1"), 2023, 2027)),
        # Years before CloudTrail or after next year are bogus times: not projected (reported).
        (["us-east-1"], [1970, 2099], Projection(("us-east-1",), 2013, 2027)),
    ],
)  # fmt: skip
def test_what_a_projection_covers(regions, years, expected):
    assert projection_for(regions, years, this_year=2026) == expected


@pytest.mark.parametrize(
    ("partition", "reason"),
    [
        (("us-east-1", "2024", "01", "05"), None),
        (("eu-west-3", "2024", "01", "05"), "region 'eu-west-3' is not in the table's region enum"),
        (("us-east-1", "2022", "01", "05"), "year 2022 is outside the projected range 2023..2027"),
        (("us-east-1", "24", "01", "05"), "year '24' is not four digits"),
        (("us-east-1", "2024", "1", "05"), "month '1' is not 01..12"),
        (("us-east-1", "2024", "13", "05"), "month '13' is not 01..12"),
        (("us-east-1", "2024", "01", "32"), "day '32' is not 01..31"),
    ],
)  # fmt: skip
def test_partitions_the_projection_would_hide(partition, reason):
    values = dict(zip(("region", "year", "month", "day"), partition, strict=True))
    assert uncovered(values, Projection(("eu-west-1", "us-east-1"), 2023, 2027)) == reason


def test_projections_only_widen_when_merged():
    merged = Projection(("us-east-1",), 2024, 2027).merged(Projection(("eu-west-1",), 2023, 2026))
    assert merged == Projection(("eu-west-1", "us-east-1"), 2023, 2027)
    assert merged.partition_count == 2 * 5 * 12 * 31


@pytest.mark.parametrize("name", ["CloudTrail", "cloudtrail-logs", "a`b", "x" * 256])
def test_names_athena_would_not_take_as_they_are_are_refused(name):
    with pytest.raises(CatalogDefinitionError, match="lower-case letters, digits and underscores"):
        create_table_ddl(EVENTS, table=name, location=LOCATION, projection=PROJECTION)
    with pytest.raises(CatalogDefinitionError, match="database name"):
        create_table_ddl(EVENTS, table="t", database=name, location=LOCATION, projection=PROJECTION)


@pytest.mark.parametrize("bad", ["US-EAST-1", "us east 1", "a,b", ""])
def test_a_region_that_cannot_be_an_enum_value_is_refused(bad):
    with pytest.raises(CatalogDefinitionError):
        Projection((bad,), 2024, 2025)


def test_standard_regions_cover_every_commercial_region_the_sdk_knows():
    known = set(boto3.session.Session().get_available_regions("cloudtrail"))
    assert known <= set(STANDARD_REGIONS), f"add {sorted(known - set(STANDARD_REGIONS))}"
    assert list(STANDARD_REGIONS) == sorted(STANDARD_REGIONS)


def test_the_insights_table_keeps_the_documented_fields_and_the_shared_derived_ones():
    columns = dict(hive_columns(INSIGHTS.columns))
    assert list(columns) == [
        "eventversion", "eventtime", "awsregion", "eventid", "eventtype",
        "recipientaccountid", "sharedeventid", "insightdetails", "eventcategory",
        "eventtimestamp", "unmapped",
    ]  # fmt: skip
    assert columns["insightdetails"] == (
        "struct<state:string,eventsource:string,eventname:string,insighttype:string,"
        "errorcode:string,insightcontext:string>"
    )
    assert columns["eventtimestamp"] == "timestamp"
    assert TABLES == {"events": EVENTS, "insights": INSIGHTS}
