"""``prefect deploy --all`` against a running Prefect API creates both deployments as declared."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))


@pytest.mark.slow
def test_prefect_deploy_all_creates_the_scheduled_ingest_and_the_backfill(prefect_harness):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.settings import PREFECT_API_URL

    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),  # the harness's server
        "CTPARQUET_SOURCE": "s3://org-trail/AWSLogs/",
        "CTPARQUET_DEST": "s3://lake/cloudtrail/",
        "CTPARQUET_PROJECT_DIR": str(ROOT),
    }
    for command in (
        [PREFECT, "work-pool", "create", "cloudtrail", "--type", "process", "--overwrite"],
        [PREFECT, "--no-prompt", "deploy", "--all", "--prefect-file", "deploy/prefect.yaml"],
    ):
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr

    with get_client(sync_client=True) as client:
        ingest = client.read_deployment_by_name("cloudtrail-ingest/cloudtrail-ingest")
        backfill = client.read_deployment_by_name("cloudtrail-backfill/cloudtrail-backfill")
        compact = client.read_deployment_by_name("cloudtrail-compact/cloudtrail-compact")
        verify = client.read_deployment_by_name("cloudtrail-verify/cloudtrail-verify")
    assert ingest.work_pool_name == backfill.work_pool_name == "cloudtrail"
    assert ingest.entrypoint == "flows/ingest.py:ingest"
    [schedule] = ingest.schedules
    assert isinstance(schedule.schedule, CronSchedule)
    assert schedule.schedule.cron == "*/15 * * * *"
    assert schedule.active
    assert schedule.parameters == {
        "source": "s3://org-trail/AWSLogs/",
        "dest": "s3://lake/cloudtrail/",
        "lookback_days": 2,
    }
    assert backfill.schedules == []
    schema = backfill.parameter_openapi_schema or {}
    assert set(schema["required"]) == {"source", "dest", "start", "end"}
    assert set(schema["properties"]) >= {"accounts", "regions"}
    [daily] = compact.schedules
    assert isinstance(daily.schedule, CronSchedule)
    assert (daily.schedule.cron, daily.active) == ("30 2 * * *", True)
    assert daily.parameters == {"dest": "s3://lake/cloudtrail/", "target_mb": 128}
    with get_client(sync_client=True) as client:
        hunt = client.read_deployment_by_name("cloudtrail-hunt/cloudtrail-hunt")
    assert hunt.entrypoint == "flows/hunt.py:hunt"
    [hunt_daily] = hunt.schedules
    assert isinstance(hunt_daily.schedule, CronSchedule)
    assert (hunt_daily.schedule.cron, hunt_daily.active) == ("15 3 * * *", True)
    assert hunt_daily.parameters == {"dest": "s3://lake/cloudtrail/", "lookback_days": 1}
    [nightly] = verify.schedules
    assert verify.entrypoint == "flows/verify.py:verify"
    assert isinstance(nightly.schedule, CronSchedule)
    assert (nightly.schedule.cron, nightly.active) == ("0 3 * * *", True)
    assert nightly.parameters == {
        "source": "s3://org-trail/AWSLogs/",
        "dest": "s3://lake/cloudtrail/",
        "repair": True,
    }
