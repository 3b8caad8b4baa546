"""Suite-wide settings: no network for Prefect, where the shared real samples live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
# Fixtures are dated in the past: a run lists every delivery day unless a test sets a window
# (the production default, today and yesterday, is tested on its own).
os.environ.setdefault("CTPARQUET_LOOKBACK_DAYS", "0")

SHARED_DATA = Path(
    os.environ.get("CTPARQUET_SHARED_DATA", Path(__file__).parents[1] / ".." / "shared" / "data")
).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public CloudTrail samples, read in place (never copied into the project)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared samples are missing at {SHARED_DATA} (set CTPARQUET_SHARED_DATA)")
    return SHARED_DATA
