"""Nulls cost no writes in the scanner: its buffers are zero past their length, even after
an undo. A record undone after some of its values were written, then replaced by a row
with nulls in their places, must read as those nulls, not as the undone values."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.cloudtrail import EVENTS
from tests.conftest import require
from transforms import native

LONG = b"a user agent longer than the twelve bytes a view holds inline"
GOOD = b'{"eventTime":"2024-01-05T10:00:01Z","eventID":"g","userAgent":"%s"}' % LONG
# Written as far as userIdentity.sessionContext (a string where an object belongs), then undone.
UNDONE = (
    b'{"eventName":"written then undone","userAgent":"%s","readOnly":"true",'
    b'"userIdentity":{"type":"IAMUser","userName":"bob","sessionContext":"odd"},'
    b'"resources":[{"ARN":"arn:aws:s3:::b"}]}' % LONG
)
SPARSE = b'{"eventID":"sparse"}'  # what the fallback hands back instead: nearly all nulls


def _scanned(documents: list[bytes], fallback: Any) -> dict[str, list[Any]]:
    scanner = native.new_scanner(EVENTS)
    assert scanner is not None
    for document in documents:
        assert scanner.add(document, fallback) is not None
    frame = native.scanned_frame(scanner, EVENTS)
    return frame.select("eventid", "eventname", "useragent", "readonly", "useridentity",
                        "resources").to_dict(as_series=False)  # fmt: skip


@pytest.fixture
def scanner_built(monkeypatch: pytest.MonkeyPatch) -> None:
    require(native.native_built(), "the native scanner is not built (no C compiler at install?)")
    monkeypatch.setenv(native.PURE_PYTHON_ENV, "0")


def test_a_row_of_nulls_over_an_undone_record_reads_as_nulls(scanner_built):
    handed_back = []

    def fallback(span: bytes, position: int) -> tuple[bytes, str | None]:
        handed_back.append(position)
        return SPARSE, None

    document = b'{"Records":[' + b",".join([GOOD, UNDONE, GOOD, UNDONE, GOOD]) + b"]}"
    columns = _scanned([document], fallback)
    assert handed_back == [1, 3]
    assert columns["eventid"] == ["g", "sparse", "g", "sparse", "g"]
    assert columns["eventname"] == [None] * 5
    assert columns["useragent"] == [LONG.decode(), None, LONG.decode(), None, LONG.decode()]
    assert columns["readonly"] == [None] * 5
    assert columns["resources"] == [None] * 5
    for row in columns["useridentity"]:
        assert row is None or all(value is None for value in row.values()), row


def test_a_declined_record_leaves_no_trace_in_the_next(scanner_built):
    def decline(span: bytes, position: int) -> None:
        return None  # a problem, not a row: the next record takes its place

    document = b'{"Records":[' + b",".join([UNDONE, SPARSE, UNDONE, GOOD]) + b"]}"
    columns = _scanned([document, b'{"Records":[' + SPARSE + b"]}"], decline)
    assert columns["eventid"] == ["sparse", "g", "sparse"]
    assert columns["eventname"] == [None] * 3
    assert columns["useragent"] == [None, LONG.decode(), None]
    assert columns["resources"] == [None] * 3
