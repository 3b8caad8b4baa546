"""The stage benchmark's clock: a stage timed inside another is not counted twice."""

from __future__ import annotations

from tests.benchmarks.stages import StageClock


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_inner_stages_are_taken_out_of_the_outer_one():
    time = FakeTime()
    clock = StageClock(now=time)
    with clock.stage("parse"):
        time.now += 2
        with clock.stage("columns"):
            time.now += 3
            with clock.stage("columns"):  # the same stage nested is counted once
                time.now += 1
        time.now += 4
    assert clock.seconds == {"parse": 6, "columns": 4}


def test_a_wrapped_function_is_timed_as_its_stage():
    time = FakeTime()
    clock = StageClock(now=time)

    class Module:
        @staticmethod
        def work(x: int) -> int:
            time.now += 5
            return x + 1

    clock.wrap(Module, "work", "encode")
    assert Module.work(1) == 2
    assert clock.seconds == {"encode": 5}
