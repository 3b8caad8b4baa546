"""`ctparquet register` saves the hunting pack as Athena named queries: over HTTP to moto.

moto (5.x) serves CreateNamedQuery, GetNamedQuery and ListNamedQueries, not
UpdateNamedQuery; the fixture below teaches its server that one call, as the AWS API
reference describes it (NamedQueryId, Name, Description, QueryString; the database
and workgroup stay), so the update path goes over HTTP like the rest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from flows.cli import EXIT_OK, app
from flows.register import save_named_queries
from schemas.hunts import load_pack

DEST = "s3://lake/cloudtrail"


@pytest.fixture
def athena(s3) -> Iterator[object]:
    from moto.athena.responses import AthenaResponse

    def update_named_query(self: AthenaResponse) -> str:
        query = self.athena_backend.get_named_query(self._get_param("NamedQueryId"))
        if query is None:
            return self.error("NamedQuery does not exist", 400)  # type: ignore[return-value]
        query.name = self._get_param("Name")
        query.description = self._get_param("Description")
        query.query_string = self._get_param("QueryString")
        return "{}"

    AthenaResponse.update_named_query = update_named_query  # type: ignore[attr-defined]
    s3.client().create_bucket(Bucket="lake")
    try:
        yield s3.client("athena")
    finally:
        del AthenaResponse.update_named_query  # type: ignore[attr-defined]


def saved(athena) -> dict[str, dict]:
    pages = athena.get_paginator("list_named_queries").paginate(WorkGroup="primary")
    ids = [i for page in pages for i in page["NamedQueryIds"]]  # 50 to a page
    queries = [athena.get_named_query(NamedQueryId=i)["NamedQuery"] for i in ids]
    return {q["Name"]: q for q in queries}


def register(*extra: str) -> dict:
    result = CliRunner().invoke(
        app, ["register", DEST, "--database", "security", "--table", "ct", "--json", *extra]
    )
    assert result.exit_code == EXIT_OK, result.output
    summary: dict = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


def test_register_saves_every_question_once_and_updates_a_changed_one(athena):
    pack = load_pack()
    first = register()
    assert sorted(first["named_queries"]["created"]) == sorted(h.name for h in pack)
    queries = saved(athena)
    assert set(queries) == {f"ct/{h.name}" for h in pack}
    flow_logs = queries["ct/flow_logs_deleted"]
    assert flow_logs["Database"] == "security"
    assert 'FROM "security"."ct"' in flow_logs["QueryString"]
    assert "cloudtrail_logs" not in flow_logs["QueryString"]
    assert flow_logs["Description"].startswith("VPC flow logs deleted [high; T1562.008]")

    second = register()
    assert second["named_queries"] == {
        "created": [],
        "updated": [],
        "unchanged": [h.name for h in pack],
    }
    assert saved(athena) == queries  # nothing was written twice

    athena.update_named_query(
        NamedQueryId=flow_logs["NamedQueryId"],
        Name="ct/flow_logs_deleted",
        QueryString="SELECT 1",
    )
    third = save_named_queries(workgroup="primary", database="security", table="ct")
    assert third["updated"] == ["flow_logs_deleted"]
    assert saved(athena)["ct/flow_logs_deleted"]["QueryString"] == flow_logs["QueryString"]


def test_queries_for_another_table_or_workgroup_are_kept_apart(athena):
    athena.create_work_group(Name="secops", Configuration={})
    save_named_queries(workgroup="primary", database="security", table="ct")
    other = save_named_queries(workgroup="secops", database="security", table="ct")
    assert len(other["created"]) == len(load_pack())
    renamed = save_named_queries(workgroup="primary", database="security", table="trail")
    assert len(renamed["created"]) == len(load_pack())
    assert len(saved(athena)) == 2 * len(load_pack())
