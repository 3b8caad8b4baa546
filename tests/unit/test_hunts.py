"""The hunting pack as data: every file's header, its SQL as Trino, and the loader's rules."""

from __future__ import annotations

import ast
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from flows.query import to_duckdb_sql
from schemas.hunts import (
    RESULT_COLUMNS,
    SEVERITIES,
    HuntPackError,
    load_pack,
    parse_hunt,
    select_hunts,
    sql_literal,
)

PACK = load_pack()
ROOT = Path(__file__).parents[2]

# The technique families the pack must cover (issue 14), each with the questions that do.
FAMILIES = {
    "root use": ["root_activity"],
    "console logins without MFA": ["console_login_without_mfa"],
    "new users, access keys, login profiles": [
        "iam_user_created",
        "iam_access_key_created",
        "login_profile_created_or_updated",
    ],
    "admin policies and trust policies": ["admin_policy_attached", "role_trust_policy_changed"],
    "federation tokens": ["federation_token_issued"],
    "CloudTrail stopped, deleted or narrowed": [
        "cloudtrail_stopped_or_deleted",
        "cloudtrail_selectors_narrowed",
        "s3_lifecycle_expires_quickly",
    ],
    "GuardDuty, Config, flow logs, DNS logs": [
        "guardduty_disabled",
        "config_disabled",
        "flow_logs_deleted",
        "dns_query_logging_removed",
    ],
    "leaving the organisation": ["leave_organization"],
    "public buckets": ["s3_bucket_made_public"],
    "security groups open to the world": ["security_group_open_to_world"],
    "snapshots, AMIs, RDS snapshots shared": [
        "ebs_snapshot_shared",
        "ami_shared",
        "rds_snapshot_shared",
    ],
    "password data, user data, secrets in bulk": [
        "ec2_password_data_read",
        "ec2_user_data_read",
        "secrets_read_in_bulk",
    ],
    "SSM commands and sessions": ["ssm_command_or_session"],
    "Instance Connect and serial console keys": ["ec2_instance_connect_key_pushed"],
    "Lambda code, layers, permissions": [
        "lambda_code_updated",
        "lambda_layer_changed",
        "lambda_permission_added",
    ],
    "Roles Anywhere trust anchors": ["rolesanywhere_trust_anchor"],
    "unusual instance types, model invocation": [
        "unusual_instance_types",
        "bedrock_model_invocation",
    ],
    "AccessDenied bursts, enumeration": ["access_denied_burst", "enumeration_by_one_principal"],
}


def test_the_pack_has_at_least_30_questions_with_distinct_names():
    names = [h.name for h in PACK]
    assert len(names) >= 30
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_technique_family_of_the_issue_is_covered(family):
    names = {h.name for h in PACK}
    assert set(FAMILIES[family]) <= names


@pytest.mark.parametrize("hunt", PACK, ids=lambda h: h.name)
def test_each_question_parses_as_trino_and_returns_the_common_columns_first(hunt):
    [tree] = sqlglot.parse(hunt.sql, read="trino")
    assert isinstance(tree, exp.Select)
    columns = [e.alias_or_name for e in tree.expressions]
    assert tuple(columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    assert columns[len(RESULT_COLUMNS) :] == ["errorcode", "detail"]
    assert hunt.severity in SEVERITIES
    assert hunt.techniques and all(t.startswith("T") for t in hunt.techniques)
    assert {p.name for p in hunt.parameters} >= {"window_start", "window_end"}


@pytest.mark.parametrize("hunt", PACK, ids=lambda h: h.name)
def test_each_question_reads_only_the_table_and_translates_to_duckdb(hunt):
    tree = sqlglot.parse_one(hunt.sql, read="athena")
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    assert {t.name for t in tree.find_all(exp.Table)} - ctes == {"cloudtrail_logs"}
    duckdb_sql = to_duckdb_sql(hunt.sql)
    assert "JSON_EXTRACT_SCALAR" not in duckdb_sql.upper()  # DuckDB has no such function
    if "json_extract_scalar" in hunt.sql:
        assert "->>" in duckdb_sql


def test_render_puts_values_in_the_params_cte_and_nowhere_else():
    [burst] = select_hunts(["access_denied_burst"])
    rendered = burst.render(
        {"window_start": date(2023, 7, 10), "window_end": None, "min_denied": 3}
    )
    assert "TIMESTAMP '2023-07-10 00:00:00' AS window_start" in rendered
    assert "current_timestamp AS window_end" in rendered  # None keeps the default
    assert "3 AS min_denied" in rendered and "10 AS min_denied" not in rendered
    assert (
        rendered.replace(
            "TIMESTAMP '2023-07-10 00:00:00'", "current_timestamp - INTERVAL '1' DAY"
        ).replace("3 AS min_denied", "10 AS min_denied")
        == burst.sql
    )
    with pytest.raises(HuntPackError, match="no parameter 'min_apples'"):
        burst.render({"min_apples": 1})


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        (date(2024, 1, 5), "TIMESTAMP '2024-01-05 00:00:00'"),
        (datetime(2024, 1, 5, 13, 4, 5, tzinfo=UTC), "TIMESTAMP '2024-01-05 13:04:05'"),
        (datetime.fromisoformat("2024-01-05T15:04:05+02:00"), "TIMESTAMP '2024-01-05 13:04:05'"),
        (20, "20"),
    ],
)
def test_parameter_values_become_trino_literals_in_utc(value, literal):
    assert sql_literal(value) == literal


@pytest.mark.parametrize("value", ["20", 1.5, True, None])
def test_other_values_are_refused(value):
    with pytest.raises(HuntPackError):
        sql_literal(value)


GOOD = """-- name: x_found
-- title: X
-- description: finds x
--   over two lines
-- why: because
-- techniques: T1078, T1098.001
-- severity: low
-- param: window_start = current_timestamp | start
WITH params AS (SELECT current_timestamp AS window_start)
SELECT 1
"""


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (("-- severity: low", "-- severity: dire"), "severity must be one of"),
        (("T1098.001", "TA0001"), "ATT&CK IDs"),
        (("-- name: x_found", "-- name: X-Found"), "lower-case"),
        (("-- why: because\n", ""), "header lacks why"),
        (("current_timestamp AS window_start", "now() AS window_start"), "params CTE must hold"),
        (("-- param: window_start", "-- param: window_begin"), "window_start parameter"),
        (("-- param: window_start = current_timestamp | start", "-- param: w"), "param must read"),
        (("-- title: X", "-- title: X\n-- title: Y"), "title given twice"),
        (("-- why: because", "-- why: because\n-- a stray comment"), "not a header line"),
    ],
)
def test_a_malformed_header_is_refused_with_the_reason(change, error):
    assert parse_hunt(GOOD).description == "finds x over two lines"
    with pytest.raises(HuntPackError, match=error):
        parse_hunt(GOOD.replace(*change))


def test_unknown_question_names_are_refused_naming_them():
    with pytest.raises(HuntPackError, match="no such question: nope"):
        select_hunts(["root_activity", "nope"])
    assert [h.name for h in select_hunts(["root_activity"])] == ["root_activity"]


def test_the_pack_loader_imports_nothing_above_schemas():
    source = (ROOT / "schemas" / "hunts" / "__init__.py").read_text()
    imported = {
        (node.module or "").split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom)
    } | {
        alias.name.split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert not imported & {"flows", "transforms", "prefect", "boto3", "s3fs", "duckdb", "sqlglot"}


def test_the_sql_files_ship_as_package_data():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"schemas.hunts" = ["*.sql"]' in pyproject
    assert len(list((ROOT / "schemas" / "hunts").glob("*.sql"))) == len(PACK)
