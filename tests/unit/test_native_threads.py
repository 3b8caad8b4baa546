"""The scanner walks a document without the GIL: batches parse on two cores at once."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from schemas.cloudtrail import EVENTS
from tests.conftest import require
from tests.corpus import generate_corpus
from transforms import native
from transforms.convert import ConvertedBatch, LogBytes, convert_objects

GOOD = (
    b'{"eventTime":"2024-01-05T10:00:01Z","awsRegion":"us-east-1","eventID":"g",'
    b'"readOnly":true,"requestParameters":{"items":[' + b",".join([b'{"k":"v","n":[1,2,3]}'] * 40)
) + b"]}}"
ODD = b'{"eventTime":"2024-01-05T10:00:01Z","eventID":"odd","eventName":5}'  # to the fallback


def _require_native() -> None:
    require(native.native_built(), "the native scanner is not built (no C compiler at install?)")


def _objects(tmp_path: Path) -> list[LogBytes]:
    generate_corpus(tmp_path, seed=5, events=3_000, events_per_object=100, unknown_field_rate=0.1)
    paths = sorted(p for p in tmp_path.rglob("*.json.gz") if "/CloudTrail/" in p.as_posix())
    return [LogBytes(p.as_posix(), p.read_bytes(), p.parts[-5]) for p in paths]


def _assert_same(one: ConvertedBatch, other: ConvertedBatch) -> None:
    assert_frame_equal(one.placed.events, other.placed.events)
    assert [p.as_dict() for p in one.problems] == [p.as_dict() for p in other.problems]


def test_two_threads_at_once_give_the_frames_of_one_after_the_other(monkeypatch, tmp_path):
    _require_native()
    monkeypatch.setenv(native.PURE_PYTHON_ENV, "0")
    objects = _objects(tmp_path)
    halves = [objects[::2], objects[1::2]]
    alone = [convert_objects(half) for half in halves]
    assert all(batch.placed.events["unmapped"].null_count() < batch.placed.events.height
               for batch in alone)  # fmt: skip
    for _ in range(3):
        start = threading.Barrier(2)
        together: list[ConvertedBatch | None] = [None, None]

        def convert(index: int, together=together, start=start) -> None:
            start.wait()
            together[index] = convert_objects(halves[index])

        threads = [threading.Thread(target=convert, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for batch, expected in zip(together, alone, strict=True):
            assert batch is not None
            _assert_same(batch, expected)


def _walk_seen_by_another_thread(records: int) -> bool:
    """Whether a Python thread ran while the scanner walked ``records`` good records.

    The walk lies between two calls of the fallback (which hold the GIL): the first sets
    ``walking``, the last clears it. With the switch interval made huge, a thread holding
    the GIL keeps it until it blocks, so the probe can only see ``walking`` set if ``add``
    let the GIL go during the walk.
    """
    document = b'{"Records":[' + b",".join([ODD] + [GOOD] * records + [ODD]) + b"]}"
    walking = threading.Event()
    finished = threading.Event()
    seen: list[bool] = []

    def fallback(span: bytes, position: int) -> None:
        if position == 0:
            walking.set()
        else:
            walking.clear()

    def probe() -> None:
        while not finished.is_set():
            if walking.is_set():
                seen.append(True)
                return
            time.sleep(0.0002)  # lets the GIL go: the walk's thread is never kept waiting

    scanner = native.new_scanner(EVENTS)
    assert scanner is not None
    thread = threading.Thread(target=probe)
    thread.start()
    try:
        assert scanner.add(document, fallback) == records + 2
    finally:
        finished.set()
        thread.join()
    assert not walking.is_set()
    return bool(seen)


def test_the_walk_of_a_document_lets_other_threads_run(monkeypatch):
    _require_native()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)  # no forced switch: only a released GIL lets the probe in
    try:
        # a longer walk each time, so a loaded machine's late wake-up cannot fail it
        seen = any(_walk_seen_by_another_thread(records) for records in (2_000, 8_000, 32_000))
    finally:
        sys.setswitchinterval(interval)
    assert seen


def test_a_scanner_refuses_a_second_caller_while_it_walks(monkeypatch):
    _require_native()
    scanner = native.new_scanner(EVENTS)
    assert scanner is not None
    errors: list[str] = []

    def fallback(span: bytes, position: int) -> None:
        try:
            scanner.add(b'{"Records":[]}', fallback)
        except RuntimeError as error:
            errors.append(str(error))
        with pytest.raises(RuntimeError):
            scanner.finish()

    document = b'{"Records":[' + GOOD + b"," + ODD + b"]}"
    assert scanner.add(document, fallback) == 2
    assert errors == ["this Scanner is in use (one thread at a time)"]
    assert scanner.rows == 1  # the good record; the odd one was not a row


def test_a_writable_document_scans_as_its_bytes(monkeypatch):
    _require_native()
    scanner = native.new_scanner(EVENTS)
    assert scanner is not None
    document = bytearray(b'{"Records":[' + GOOD + b"]}")
    handed: list[int] = []

    def fallback(span: bytes, position: int) -> None:
        handed.append(position)

    assert scanner.add(document, fallback) == 1
    assert scanner.add(memoryview(bytes(document)), fallback) == 1
    assert handed == []
    assert scanner.rows == 2
