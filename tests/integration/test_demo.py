"""``python3 dev.py demo`` can be rerun: each run converts into a fresh table and answers from
the input it names (the demo itself, with set-up and Prefect, is too slow for the suite: its
parts are tested here, the conversion through the real ``ctparquet``)."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import dev
from flows.query import run_query
from flows.render import MAX_CELL, fit
from tests.corpus import generate_corpus


def test_the_demo_names_the_real_samples_or_says_where_they_were_not_found(tmp_path):
    samples = tmp_path / "shared" / "data" / "invictus-ir" / "AWSLogs"
    source, said = dev.demo_input(samples)
    assert source == dev.DEMO / "generated-logs" / "AWSLogs"
    assert said == f"a generated corpus: the real samples were not found at {samples}"
    samples.mkdir(parents=True)
    assert dev.demo_input(samples) == (samples, f"the real samples in {samples}")


def answer_rows(printed: str) -> list[tuple[str, ...]]:
    """The rows of the template query's aligned table, the last thing the demo prints."""
    lines = printed.splitlines()
    header = max(i for i, line in enumerate(lines) if line.startswith("arn "))
    return [tuple(cell.strip() for cell in line.split("|")) for line in lines[header + 2 :]]


def records(logs: Path) -> list[dict]:
    """Every API event record under ``logs``."""
    found = []
    for path in logs.rglob("*.json.gz"):
        if "CloudTrail-Digest" not in path.parts and "CloudTrail-Insight" not in path.parts:
            found += json.loads(gzip.decompress(path.read_bytes()))["Records"]
    return found


def rows_of_logs(logs: Path) -> set[tuple[str, ...]]:
    """(arn, eventName, sourceIPAddress, eventTime) of every record under ``logs``, as the
    aligned table shows them (a long ARN cut, ending in …)."""
    rows = set()
    for r in records(logs):
        arn = (r.get("userIdentity") or {}).get("arn") or ""
        row = (arn, r["eventName"], r.get("sourceIPAddress") or "", r["eventTime"])
        rows.add(tuple(fit(value, MAX_CELL) for value in row))
    return rows


def test_a_second_demo_answers_from_its_own_input_only(shared_data, tmp_path, capfd):
    generated = tmp_path / "generated"
    generate_corpus(generated, seed=7, events=300)
    samples = shared_data / "invictus-ir" / "AWSLogs"
    table = tmp_path / "demo-table"

    here = Path(sys.executable).parent  # the ctparquet of the environment running the tests
    converted = dev.convert_and_answer(
        generated / "AWSLogs", dev.fresh(table), "--no-prefect", bin_dir=here
    )
    assert converted == 0
    first = answer_rows(capfd.readouterr().out)
    assert dev.convert_and_answer(samples, dev.fresh(table), "--no-prefect", bin_dir=here) in (0, 3)
    second = answer_rows(capfd.readouterr().out)

    assert len(first) == 100 and set(first) <= rows_of_logs(generated / "AWSLogs")
    assert len(second) == 100
    assert set(second) <= rows_of_logs(samples), "the second answer holds rows of another input"
    held = run_query(str(table), "SELECT DISTINCT eventid FROM t").table.column("eventid")
    assert set(held.to_pylist()) == {r["eventID"] for r in records(samples)}
