"""Day-folder state: the mark passes only done, settled names; merging keeps both runs' work."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from flows.state import DayState, Listed, UnsafeKeyError, advance, day_closed, settled, trail_key
from flows.storage import StoredObject

HOUR = timedelta(hours=1)
NAME = "111122223333_CloudTrail_us-east-1_20240310T{}Z_x.json.gz"


@pytest.mark.parametrize(
    ("state", "listed", "closed", "expected"),
    [
        # Nothing listed: nothing changes; a closed empty day is complete.
        (DayState(), [], False, DayState()),
        (DayState(), [], True, DayState(complete=True)),
        # Done and settled names: the mark moves over them; done keeps every name.
        (
            DayState(done={"a", "b"}),
            [Listed("a", True), Listed("b", True)],
            False,
            DayState("b", {"a", "b"}),
        ),
        # A young name stops the mark.
        (
            DayState(done={"a", "b"}),
            [Listed("a", True), Listed("b", False)],
            False,
            DayState("a", {"a", "b"}),
        ),
        # A name not done (a failed read) stops the mark, though later ones are done.
        (
            DayState(done={"a", "c"}),
            [Listed("a", True), Listed("b", True), Listed("c", True)],
            True,
            DayState("a", {"a", "c"}),
        ),
        # In a closed folder every done name is settled: the mark passes a young one.
        (
            DayState(done={"a", "b"}),
            [Listed("a", True), Listed("b", False)],
            True,
            DayState("b", {"a", "b"}, complete=True),
        ),
        # Listing order does not matter; names at or below the mark are passed.
        (DayState("b", {"d"}), [Listed("d", True), Listed("c", True)], False, DayState("b", {"d"})),
        # Complete is not for ever: a late arrival in a closed folder undoes it until done.
        (
            DayState("a", {"a"}, complete=True),
            [Listed("0", True), Listed("a", True)],
            True,
            DayState("a", {"a"}),
        ),
        # A folder with a read still failing is pending, never complete.
        (
            DayState("a", {"a"}, failures={"b": 1}),
            [Listed("a", True)],
            True,
            DayState("a", {"a"}, failures={"b": 1}),
        ),
    ],
)
def test_advance(state, listed, closed, expected):
    assert advance(state, listed, day_closed=closed) == expected


def test_merge_keeps_the_later_mark_every_done_name_and_the_most_attempts():
    mine = DayState("b", {"a", "b", "d"}, failures={"x": 1, "y": 2})
    theirs = DayState("c", {"c", "x"}, complete=True, failures={"y": 1})
    assert mine.merged(theirs) == DayState("c", {"a", "b", "c", "d", "x"}, failures={"y": 2})
    assert DayState().merged(DayState(None, {"a"})) == DayState(None, {"a"})
    both = DayState(complete=True).merged(DayState(complete=True))
    assert both.complete


def test_a_state_written_before_every_name_was_kept_vouches_for_names_below_its_mark():
    legacy = DayState.from_json(b'{"mark": "m", "done": ["x"], "complete": true}')
    assert legacy.is_done("a") and legacy.is_done("x") and not legacy.is_done("n")
    assert not DayState("m", {"x"}).is_done("a")  # today's states name every done object


def test_state_round_trips_as_json():
    state = DayState("m", {"x", "y"}, complete=True, failures={"z": 2})
    assert DayState.from_json(state.to_json()) == state


def test_settled_by_name_time_else_upload_time():
    now = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
    obj = StoredObject("p", 1, modified=now)
    assert settled(obj, NAME.format("1059"), now, HOUR)
    assert not settled(obj, NAME.format("1101"), now, HOUR)
    assert not settled(obj, "no-time-in-name.json.gz", now, HOUR)  # uploaded just now
    assert settled(StoredObject("p", 1, now - 2 * HOUR), "x.json.gz", now, HOUR)


def test_a_day_closes_the_settle_margin_after_midnight():
    day = date(2024, 3, 9)
    assert not day_closed(day, datetime(2024, 3, 10, 0, 59, tzinfo=UTC), HOUR)
    assert day_closed(day, datetime(2024, 3, 10, 1, 0, tzinfo=UTC), HOUR)


@pytest.mark.parametrize(
    ("folder", "key"),
    [
        ("trail/AWSLogs/111122223333/CloudTrail/us-east-1", None),
        ("trail/pre.fix/AWSLogs/111122223333/CloudTrail/us-east-1", None),  # dots in a name
        ("trail/../../../AWSLogs/111122223333/CloudTrail/us-east-1", "trail/../../.."),
        ("trail/a/../AWSLogs/111122223333/CloudTrail/us-east-1", "trail/a/.."),
        ("trail/./AWSLogs/111122223333/CloudTrail/us-east-1", "trail/."),
    ],
)
def test_a_trail_folder_with_dot_segments_is_refused_not_normalised(folder, key):
    if key is None:
        assert trail_key(folder) == folder
        return
    with pytest.raises(UnsafeKeyError) as refused:
        trail_key(folder)
    assert refused.value.key == folder and key in str(refused.value)


def test_a_local_folder_keeps_its_path_syntax():
    """A user's ``../logs`` is a path on their disk; its listed names are never ``..``."""
    folder = "/work/x/../logs/AWSLogs/111122223333/CloudTrail/us-east-1"
    assert trail_key(folder, local=True) == "work/logs/AWSLogs/111122223333/CloudTrail/us-east-1"
