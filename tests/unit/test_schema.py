"""The schema keeps every column of the standard Athena table, and its views agree."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from schemas.cloudtrail import ADDED_FIELDS, COLUMNS, PARTITION_KEYS, SEED_FIELDS
from schemas.derive import (
    arrow_schema,
    glue_columns,
    hive_columns,
    partition_columns,
    polars_schema,
)
from tests.conftest import SHARED_DATA, require

SEED_DDL = Path(__file__).parents[1] / "data" / "athena-cloudtrail-ddl.sql"
"""The seed's DDL, kept in the project (tests/data/README.md names its source)."""
ORIGINAL_DDL = SHARED_DATA.parent / "reference" / "athena-cloudtrail-ddl.sql"


def seed_columns() -> list[tuple[str, str]]:
    """(name, type) of the standard table, lower-cased and without spaces, as Hive sees it."""
    ddl = SEED_DDL.read_text()
    create = ddl.index("CREATE EXTERNAL TABLE")
    body = ddl[ddl.index("(", create) + 1 : ddl.index("PARTITIONED BY")].rsplit(")", 1)[0]
    body = re.sub(r"\s*([<>,:])\s*", r"\1", re.sub(r"\s+", " ", body)).strip().lower()
    return [(name, kind) for name, kind in (e.split(" ", 1) for e in split_top_level(body))]


def split_top_level(text: str) -> list[str]:
    """Split at commas outside ``<...>``."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text + ","):
        depth += char == "<"
        depth -= char == ">"
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return parts


def struct_members(hive: str) -> list[tuple[str, str]]:
    """Top-level members of a ``struct<...>`` type string."""
    return [
        (name, kind)
        for name, kind in (m.split(":", 1) for m in split_top_level(hive[len("struct<") : -1]))
    ]


def covers(ours: str, seed: str) -> bool:
    """Our type reads every query of the seed type: equal, or a struct with the seed's members
    first, in order, each covering, and new members only after them."""
    if ours == seed:
        return True
    if ours.startswith("struct<") and seed.startswith("struct<"):
        mine, theirs = struct_members(ours), struct_members(seed)
        return len(mine) >= len(theirs) and all(
            m[0] == t[0] and covers(m[1], t[1]) for m, t in zip(mine, theirs, strict=False)
        )
    if ours.startswith("array<") and seed.startswith("array<"):
        return covers(ours[6:-1], seed[6:-1])
    return False


def test_the_reference_ddl_is_read():
    names = [name for name, _ in seed_columns()]
    assert names[:3] == ["eventversion", "useridentity", "eventtime"]
    assert len(names) == 23


def test_the_kept_ddl_equals_the_seed_original():
    require(ORIGINAL_DDL.is_file(), f"the seed's DDL is missing at {ORIGINAL_DDL}")
    assert SEED_DDL.read_bytes() == ORIGINAL_DDL.read_bytes()


@pytest.mark.parametrize(("name", "seed_type"), seed_columns())
def test_every_standard_column_keeps_its_name_and_type(name, seed_type):
    ours = dict(hive_columns())
    assert name in ours, f"standard column {name} missing"
    assert covers(ours[name], seed_type), f"{name}: {ours[name]} does not cover {seed_type}"


def test_standard_columns_come_first_in_the_standard_order():
    assert [n for n, _ in hive_columns()][: len(SEED_FIELDS)] == [n for n, _ in seed_columns()]


def test_partition_keys_match_the_standard_table():
    assert partition_columns() == [(k, "string") for k in ("region", "year", "month", "day")]
    assert PARTITION_KEYS == ("region", "year", "month", "day")


def test_added_fields_through_event_version_1_11_are_present():
    names = {f.name for f in ADDED_FIELDS}
    assert {
        "managementevent",
        "eventcategory",
        "tlsdetails",
        "sessioncredentialfromconsole",
        "vpcendpointaccountid",
        "edgedevicedetails",
        "addendum",
        "insightdetails",
    } <= names
    identity = dict(struct_members(dict(hive_columns())["useridentity"]))
    assert {"identityprovider", "credentialid", "onbehalfof", "inscopeof"} <= set(identity)
    context = dict(struct_members(identity["sessioncontext"]))
    assert {"webidfederationdata", "sourceidentity", "ec2roledelivery", "assumedroot"} <= set(
        context
    )


ADDED_COLUMN_TYPES = {
    # Hand-written from CloudTrail's record contents (eventVersion 1.11), not from our code.
    "vpcendpointaccountid": "string",
    "managementevent": "string",
    "eventcategory": "string",
    "tlsdetails": "struct<tlsversion:string,ciphersuite:string,clientprovidedhostheader:string>",
    "sessioncredentialfromconsole": "string",
    "edgedevicedetails": "string",
    "addendum": (
        "struct<reason:string,updatedfields:string,originalrequestid:string,originaleventid:string>"
    ),
    "insightdetails": "string",
    "eventtimestamp": "timestamp",
    "unmapped": "string",
}
"""The Hive type of every column the seed table does not have."""


def hive_of_arrow(arrow: pa.DataType) -> str:
    """How Hive names the type of a column stored as ``arrow`` in Parquet (independently of
    ``schemas.derive``): what Athena must be told to read our files."""
    if pa.types.is_string(arrow):
        return "string"
    if pa.types.is_timestamp(arrow):
        return "timestamp"
    if pa.types.is_struct(arrow):
        return "struct<" + ",".join(f"{f.name}:{hive_of_arrow(f.type)}" for f in arrow) + ">"
    if pa.types.is_list(arrow):
        return f"array<{hive_of_arrow(arrow.value_type)}>"
    raise AssertionError(f"no Hive type for {arrow}")


def test_every_view_is_derived_from_the_one_definition():
    names = [c.name for c in COLUMNS]
    assert arrow_schema().names == names
    assert list(polars_schema().names()) == names
    assert [c["Name"] for c in glue_columns()] == names


def test_glue_types_are_those_of_the_parquet_files_written():
    sink = io.BytesIO()
    pq.write_table(arrow_schema().empty_table(), sink)
    stored = pq.read_schema(io.BytesIO(sink.getvalue()))
    assert [(c["Name"], c["Type"]) for c in glue_columns()] == [
        (f.name, hive_of_arrow(f.type)) for f in stored
    ]


def test_glue_types_are_the_standard_tables_and_the_documented_ones():
    glue = {c["Name"]: c["Type"] for c in glue_columns()}
    added = {name: glue[name] for name in glue if name not in dict(seed_columns())}
    assert added == ADDED_COLUMN_TYPES
    for name, seed_type in seed_columns():
        assert covers(glue[name], seed_type), f"{name}: {glue[name]} does not read {seed_type}"


def test_names_are_lower_case_as_athena_and_glue_store_them():
    assert all(n == n.lower() for n, t in hive_columns() for n in [n, *re.findall(r"(\w+):", t)])
