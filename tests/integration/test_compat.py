"""Drop-in compatibility, shown: the seed's queries and common security questions answer
over our table (``ctparquet query``, DuckDB) exactly as the raw JSON does."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.ingest import run_ingest
from flows.query import run_query
from tests.compat import (
    Question,
    assert_same_answer,
    hand_made_records,
    questions,
    raw_records,
    write_logs,
)


@pytest.fixture(scope="module")
def hand_made(tmp_path_factory) -> tuple[Path, list[dict]]:
    root: Path = tmp_path_factory.mktemp("compat")
    write_logs(root, hand_made_records())
    summary = run_ingest(str(root / "AWSLogs"), str(root / "lake"), lookback_days=0)
    assert summary.problems == []
    return root / "lake", raw_records(root / "AWSLogs")


@pytest.fixture(scope="module")
def real_samples(shared_data, tmp_path_factory) -> tuple[Path, list[dict]]:
    logs = shared_data / "invictus-ir" / "AWSLogs"
    lake = tmp_path_factory.mktemp("real") / "lake"
    assert run_ingest(str(logs), str(lake), lookback_days=0).problems == []
    return lake, raw_records(logs)


HAND_MADE_DAY = ("us-east-1", "2024", "01", "05")
REAL_DAY = ("us-east-1", "2023", "07", "10")


@pytest.mark.parametrize("question", questions(HAND_MADE_DAY), ids=lambda q: q.name)
def test_hand_made_records_answer_as_the_raw_json(hand_made, question: Question):
    lake, records = hand_made
    assert question.answer(records), "every question has rows to compare on this data"
    assert_same_answer(run_query(str(lake), question.sql).table.to_pylist(), question, records)


@pytest.mark.parametrize("question", questions(REAL_DAY), ids=lambda q: q.name)
def test_real_samples_answer_as_the_raw_json(real_samples, question: Question):
    lake, records = real_samples
    assert_same_answer(run_query(str(lake), question.sql).table.to_pylist(), question, records)


def test_the_midnight_event_is_in_its_own_day(hand_made):
    lake, _ = hand_made
    rows = run_query(
        str(lake), "SELECT eventid FROM t WHERE day = '05' AND eventname = 'RunInstances'"
    ).table.to_pylist()
    assert rows == [{"eventid": "e08"}]
