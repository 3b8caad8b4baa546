"""Every kind of broken input in one run: nothing lost, everything named, re-drivable.

The corpus (``tests/hostile.py``) mixes good objects with truncated gzip, bytes
that are not gzip, a zero-byte object, truncated JSON, wrong envelopes, bytes
that are not UTF-8, records that are not objects, bad times, records of several
MB, drifting payload types and strange identities.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

import transforms.events
from flows.cli import EXIT_OK, EXIT_PROBLEMS, app
from tests.helpers import read_table
from tests.hostile import CANARY, HostileCorpus, build_hostile_corpus, encoded, event
from transforms.quarantine import decode_entries, digest


def cli(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, [*args, "--json", "--no-prefect"])
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


def quarantine(dest: Path) -> dict[str, dict]:
    """Every quarantine entry under ``dest``, by object URL."""
    entries: dict[str, dict] = {}
    for file in sorted((dest / "_quarantine").glob("*.jsonl")):
        decode_entries(file.read_bytes(), str(file))  # the project's own reader accepts it
        for line in file.read_text().splitlines():
            entry = {"reason": None, "records": [], "redrives": 0, **json.loads(line)}
            assert entry["url"] not in entries, "an object is quarantined once"
            entries[entry["url"]] = entry
    return entries


def as_problems(corpus: HostileCorpus, problems: list[dict]) -> Counter:
    """(object name, record) of each reported problem, checked against the expected reasons."""
    names = {str(path): name for name, path in corpus.objects.items()}
    found: Counter[tuple[str, int | None]] = Counter()
    for problem in problems:
        if problem["key"] in names:
            found[(names[problem["key"]], problem.get("record"))] += 1
    return found


def assert_reported(corpus: HostileCorpus, problems: list[dict]) -> None:
    names = {str(path): name for name, path in corpus.objects.items()}
    by_place = {(names.get(p["key"]), p.get("record")): p["reason"] for p in problems}
    for expected in corpus.problems:
        reason = by_place.get((expected.name, expected.record))
        assert reason is not None, f"not reported: {expected}"
        assert expected.reason in reason, f"{expected}: reported as {reason!r}"
    assert as_problems(corpus, problems) == Counter((e.name, e.record) for e in corpus.problems)


@pytest.fixture
def corpus(tmp_path: Path) -> HostileCorpus:
    return build_hostile_corpus(tmp_path / "trail")


def test_the_hostile_corpus_converts_every_good_record_once_and_names_every_bad_one(
    every_delivery_day, corpus, tmp_path
):
    dest = tmp_path / "lake"
    status, summary = cli("ingest", str(corpus.root), str(dest))

    assert status == EXIT_PROBLEMS
    table = read_table(dest / "events")
    assert Counter(table["eventid"].to_list()) == Counter(corpus.good)
    assert summary["events_written"] == len(corpus.good)
    assert summary["duplicates_dropped"] == 1  # g1, delivered twice
    assert summary["objects_converted"] == len(corpus.objects) - 5  # five read nothing at all

    # The --json problems name each broken object and record, with the reason.
    assert_reported(corpus, summary["problems"])
    assert [p for p in summary["problems"] if p["key"].endswith("notes.txt")] == [
        {
            "key": str(corpus.root / corpus.unrecognised[0]),
            "reason": "not a CloudTrail log object key",
        }
    ]
    assert summary["problems_count"] == len(corpus.problems) + 1
    for problem in summary["problems"]:
        if problem.get("record") is not None and problem["key"].endswith("bad-times.json.gz"):
            assert problem["event_id"].startswith("bt")

    # The quarantine manifest holds the same, with what a re-drive needs.
    entries = quarantine(dest)
    broken = {name for name in (e.name for e in corpus.problems)}
    assert set(entries) == {str(corpus.objects[name]) for name in broken}
    assert summary["objects_quarantined"] == len(broken)
    for name in broken:
        path = corpus.objects[name]
        entry = entries[str(path)]
        assert entry["size"] == path.stat().st_size
        assert entry["sha256"] == digest(path.read_bytes())
        expected = sorted((e.record, e.reason) for e in corpus.problems if e.name == name)
        records = [(r["record"], r["reason"]) for r in entry["records"]]
        objects = [(None, entry["reason"])] if entry["reason"] else []
        assert len(records) + len(objects) == len(expected)
        for (record, fragment), (got_record, got_reason) in zip(
            expected, objects + records, strict=True
        ):
            assert record == got_record and fragment in got_reason
    assert entries[str(corpus.objects["truncated-json"])]["records_before_damage"] == 3
    assert entries[str(corpus.objects["zero-byte"])]["records_before_damage"] == 0

    # Nothing was written outside the table's folders, whatever a record's region said.
    assert not (tmp_path / "tmp").exists()
    assert {p.name for p in dest.iterdir()} == {"events", "_state", "_quarantine", "_staging"}
    assert not list((dest / "_staging").iterdir())


def test_strange_values_are_kept_byte_for_byte(every_delivery_day, corpus, tmp_path):
    dest = tmp_path / "lake"
    cli("ingest", str(corpus.root), str(dest))
    rows = {r["eventid"]: r for r in read_table(dest / "events").to_dicts()}
    assert len(rows["h1"]["requestparameters"]) > 4 * 1024 * 1024
    assert json.loads(rows["h2"]["unmapped"])["brandNewField"]["blob"] == "y" * (1024 * 1024)
    assert rows["d1"]["requestparameters"] == f"{CANARY} as a string"
    assert rows["d3"]["readonly"] == "True" and rows["g1"]["readonly"] == "true"
    assert rows["d4"]["responseelements"] == "12.5"
    assert json.loads(rows["d5"]["unmapped"]) == {"resources": {"ARN": f"arn:aws:s3:::{CANARY}"}}
    assert rows["d7"]["useridentity"] is None
    assert json.loads(rows["d7"]["unmapped"]) == {"userIdentity": f"{CANARY} identity as text"}
    assert rows["d8"]["useridentity"]["type"] is None
    assert rows["d8"]["useridentity"]["principalid"] == CANARY
    assert rows["d9"]["useridentity"]["type"] == "FutureIdentity"
    assert json.loads(rows["d9"]["unmapped"]) == {
        "userIdentity": {"newPart": {"x": CANARY}, "sessionContext": {"newContext": CANARY}}
    }


def test_redrive_converts_what_a_fix_made_convertible_once_and_is_idempotent(
    every_delivery_day, corpus, tmp_path, monkeypatch
):
    dest = tmp_path / "lake"
    cli("ingest", str(corpus.root), str(dest))
    before = quarantine(dest)

    # Nothing fixed yet: a re-drive converts nothing and changes nothing but its counters.
    status, nothing = cli("redrive", str(dest))
    assert status == EXIT_PROBLEMS
    assert nothing["events_written"] == 0 and nothing["objects_cleared"] == 0
    assert nothing["still_quarantined"] == len(before)
    assert_reported(corpus, nothing["problems"])
    assert {url: e["records"] for url, e in quarantine(dest).items()} == {
        url: e["records"] for url, e in before.items()
    }

    # The fixes: the decoder learns "2022-12-11 19:42:55"; two objects are re-uploaded whole,
    # one with other bytes of the same size (only a re-drive sees it), one with a new size.
    monkeypatch.setattr(
        transforms.events, "_TIME_FORMATS", (*transforms.events._TIME_FORMATS, "%Y-%m-%d %H:%M:%S")
    )
    same_size = corpus.objects["records-not-list"]
    # It also holds g2, already in the table: converted whole, that one is dropped.
    replacement = gzip.compress(encoded([event("fixed1"), event("fixed2"), event("g2")]))
    size = same_size.stat().st_size
    assert len(replacement) <= size
    same_size.write_bytes(replacement + b"\0" * (size - len(replacement)))  # gzip ignores padding
    corpus.objects["zero-byte"].write_bytes(gzip.compress(encoded([event("fixed3")])))

    status, fixed = cli("redrive", str(dest))
    assert status == EXIT_PROBLEMS
    # bt3, fixed1, fixed2, and fixed3 from the zero-byte object's new version: its day folder
    # is closed, so the re-drive converts a new version whole rather than leave it to ingest.
    assert fixed["events_written"] == 4
    assert fixed["duplicates_dropped"] == 1  # g2
    assert fixed["objects_cleared"] == 2  # records-not-list, zero-byte
    assert fixed["objects_replaced"] == 1
    after = quarantine(dest)
    assert str(same_size) not in after and str(corpus.objects["zero-byte"]) not in after
    bad_times = after[str(corpus.objects["bad-times"])]
    assert [r["record"] for r in bad_times["records"]] == [0, 1, 4]
    assert bad_times["redrives"] == 2

    again = cli("ingest", str(corpus.root), str(dest))[1]
    assert again["events_written"] == 0  # nothing left for ingest: no duplicate of fixed3

    status, idle = cli("redrive", str(dest))
    assert idle["events_written"] == 0 and idle["objects_cleared"] == 0
    table = read_table(dest / "events")
    assert Counter(table["eventid"].to_list()) == Counter(
        [*corpus.good, "bt3", "fixed1", "fixed2", "fixed3"]
    )


def test_a_redrive_of_an_empty_quarantine_succeeds(tmp_path):
    status, summary = cli("redrive", str(tmp_path / "nothing-here"))
    assert status == EXIT_OK
    assert summary["objects_seen"] == 0 and summary["problems"] == []


def test_redrive_prints_a_human_summary(every_delivery_day, corpus, tmp_path):
    dest = tmp_path / "lake"
    cli("ingest", str(corpus.root), str(dest))
    result = CliRunner().invoke(app, ["redrive", str(dest), "--no-prefect"])
    assert result.exit_code == EXIT_PROBLEMS
    text = " ".join(result.stdout.split())  # rich wraps lines at the terminal's width
    assert "Re-drove 11 quarantined objects" in text
    assert "11 still quarantined" in text
    assert f"{len(corpus.problems)} problems" in text
    assert "record 2: record is not valid UTF-8" in text
