"""Drop-in compatibility, shown: the seed's queries and common security questions answer
over our table (``ctparquet query``, DuckDB) as our design says (each eventID once, in its
event-time partition), and as the standard raw table does wherever the two must agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.ingest import run_ingest
from flows.query import run_query
from tests.compat import (
    Question,
    S3Access,
    answer_of,
    assert_same_answer,
    hand_made_records,
    questions,
    raw_table_questions,
    raw_table_records,
    records_once_by_event_id,
    redelivered,
    write_logs,
)


@pytest.fixture(scope="module")
def hand_made(tmp_path_factory) -> tuple[Path, list[dict]]:
    root: Path = tmp_path_factory.mktemp("compat")
    write_logs(root, hand_made_records())
    summary = run_ingest(str(root / "AWSLogs"), str(root / "lake"), lookback_days=0)
    assert summary.problems == []
    return root / "lake", records_once_by_event_id(root / "AWSLogs")


@pytest.fixture(scope="module")
def real_samples(shared_data, tmp_path_factory) -> tuple[Path, list[dict]]:
    logs = shared_data / "invictus-ir" / "AWSLogs"
    lake = tmp_path_factory.mktemp("real") / "lake"
    assert run_ingest(str(logs), str(lake), lookback_days=0).problems == []
    return lake, records_once_by_event_id(logs)


HAND_MADE_DAY = ("us-east-1", "2024", "01", "05")
REAL_DAY = ("us-east-1", "2023", "07", "10")
REAL_S3_ACCESS = S3Access(
    bucket="stratus-red-team-ctlr-bucket-zqfsvooxqj",
    event_name="GetBucketAcl",
    member=("invokedby", "invokedBy"),
    contains="cloudtrail",
)
"""The seed's question with values the samples hold (they have no anonymous access): which
AWS service, with no ARN, read the ACL of a bucket of the attack simulation."""


@pytest.mark.parametrize("question", questions(HAND_MADE_DAY), ids=lambda q: q.name)
def test_hand_made_records_answer_as_the_raw_json(hand_made, question: Question):
    lake, records = hand_made
    assert question.answer(records), "every question has rows to compare on this data"
    assert_same_answer(run_query(str(lake), question.sql).table.to_pylist(), question, records)


@pytest.mark.parametrize("question", questions(REAL_DAY, REAL_S3_ACCESS), ids=lambda q: q.name)
def test_real_samples_answer_as_the_raw_json(real_samples, question: Question):
    lake, records = real_samples
    assert question.answer(records), "every question has rows to compare on the samples"
    assert_same_answer(run_query(str(lake), question.sql).table.to_pylist(), question, records)


@pytest.mark.parametrize(
    "question",
    [q for q in raw_table_questions(REAL_DAY, REAL_S3_ACCESS) if not q.partitioned],
    ids=lambda q: q.name,
)
def test_real_samples_answer_as_the_standard_raw_table(shared_data, real_samples, question):
    """No redelivery in the samples: every record of every file, as CloudTrailSerde reads
    them, answers each question that names no partition as our table does."""
    lake, _ = real_samples
    records = raw_table_records(shared_data / "invictus-ir" / "AWSLogs")
    assert redelivered(records) == 0
    assert question.answer(records)
    assert_same_answer(run_query(str(lake), question.sql).table.to_pylist(), question, records)


def test_where_the_raw_table_answers_otherwise_it_is_by_design(tmp_path):
    """Over logs with a redelivery and a midnight event, our table and the raw table differ
    exactly as decided: the redelivered event counted once, the event in its own day."""
    write_logs(tmp_path, hand_made_records())
    lake = tmp_path / "lake"
    summary = run_ingest(str(tmp_path / "AWSLogs"), str(lake), lookback_days=0)
    records = raw_table_records(tmp_path / "AWSLogs")
    assert redelivered(records) == summary.duplicates_dropped == 1

    by_name = {q.name: q for q in raw_table_questions(HAND_MADE_DAY)}
    count = by_name["count_by_eventname"]
    ours = answer_of(run_query(str(lake), count.sql).table.to_pylist(), count)
    assert count.answer(records) - ours == {("CreateUser", 2): 1}
    assert ours - count.answer(records) == {("CreateUser", 1): 1}

    day = by_name["one_day_writes"]
    ours = answer_of(run_query(str(lake), day.sql).table.to_pylist(), day)
    assert ours - day.answer(records) == {("e08", "RunInstances"): 1}  # delivered on the 6th
    assert not day.answer(records) - ours


def test_the_midnight_event_is_in_its_own_day(hand_made):
    lake, _ = hand_made
    rows = run_query(
        str(lake), "SELECT eventid FROM t WHERE day = '05' AND eventname = 'RunInstances'"
    ).table.to_pylist()
    assert rows == [{"eventid": "e08"}]
