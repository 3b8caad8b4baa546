"""Suite-wide settings: no network for Prefect, where the shared real samples live, and how a
test that needs something from the machine reports itself as not run."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

SHARED_DATA = Path(
    os.environ.get("CTPARQUET_SHARED_DATA", Path(__file__).parents[1] / ".." / "shared" / "data")
).resolve()

# CI has every resource a test needs (the samples, Chromium): there, a missing one fails the test
# instead of skipping it, so CI can never pass by not running something. `.ci/run` sets this.
REQUIRE_EVERYTHING = os.environ.get("CTPARQUET_REQUIRE_EVERY_TEST") == "1"
NOT_RUN = "not run: "


def require(available: bool, what: str) -> None:
    """Run the calling test only if ``available``; otherwise report it as not run because of
    ``what`` (e.g. "the shared samples are missing at …"), or fail where every test must run."""
    if available:
        return
    if REQUIRE_EVERYTHING:
        pytest.fail(f"{what} (CTPARQUET_REQUIRE_EVERY_TEST=1: every test must run here)")
    pytest.skip(NOT_RUN + what)


@pytest.fixture
def every_delivery_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs in this test (and the CLI processes it starts) list every delivery day.

    Tests run the production window (today and yesterday) unless they ask for this: a test
    over fixtures dated in the past, with no clock of its own, asks for it by name.
    """
    monkeypatch.setenv("CTPARQUET_LOOKBACK_DAYS", "0")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public CloudTrail samples, read in place (never copied into the project)."""
    require(
        SHARED_DATA.is_dir(),
        f"the shared samples are missing at {SHARED_DATA} (set CTPARQUET_SHARED_DATA)",
    )
    return SHARED_DATA


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per reason a test did not run, so a clone without ../shared says why."""
    reasons: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        message = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        if NOT_RUN in message:
            reasons[message.split(NOT_RUN, 1)[1]] += 1
    for reason, count in reasons.most_common():
        terminalreporter.write_line(f"{count} tests not run: {reason}")
