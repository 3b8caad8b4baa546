"""S3 keys are names, not paths: a ``..`` in a trail's key prefix never leads a local
destination's state outside it; the folder is named as a problem and the rest converts."""

from __future__ import annotations

from flows.ingest import run_ingest
from flows.settings import Settings
from tests.trail import ACCOUNT_A, Trail, at

HOSTILE = "../../../../"
"""Four levels of ``..``: below DEST/_state/days/BUCKET/, enough to climb out of DEST."""


def test_a_dot_dot_key_prefix_is_reported_and_writes_nothing_outside_a_local_dest(s3, tmp_path):
    client = s3.client()
    client.create_bucket(Bucket="trail")
    Trail(client=client, prefix=HOSTILE).deliver(ACCOUNT_A, "us-east-1", at("2024-03-10"))
    good = Trail(client=client, prefix="a/b/c/d/")  # as deep: discovery finds both
    good.deliver(ACCOUNT_A, "eu-west-1", at("2024-03-10"))
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="trail")["Contents"]]
    assert any(k.startswith(HOSTILE) for k in keys), f"moto kept the key as given: {keys}"

    outside = tmp_path / "outside"
    dest = outside / "a" / "b" / "lake"
    before = sorted(p for p in tmp_path.rglob("*"))
    summary = run_ingest(
        "s3://trail/",
        str(dest),
        lookback_days=0,
        now=at("2024-03-12"),
        settings=Settings(discovery_depth=4),
    )

    written = [p for p in tmp_path.rglob("*") if p not in before and p.is_file()]
    assert written and all(dest in p.parents for p in written), written
    refused = [p for p in summary.problems if "'..'" in p.reason]
    assert len(refused) == 1, summary.problems
    assert refused[0].key.startswith("s3://trail/../../../../AWSLogs/")
    assert summary.objects_converted == 1  # the good trail's object
    assert summary.events_written == len(good.event_ids)


def test_a_local_source_given_through_dot_dot_converts_and_stays_resumable(tmp_path, monkeypatch):
    """`ctparquet ingest ../logs lake` is a user's path, not a hostile key: it converts, and
    its state (day folders, pending markers) is recorded so a rerun reads nothing again."""
    from tests.compat import hand_made_records, write_logs

    write_logs(tmp_path / "logs", hand_made_records())
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    first = run_ingest("../logs/AWSLogs", "../lake", lookback_days=0)
    again = run_ingest("../logs/AWSLogs", "../lake", lookback_days=0)
    assert first.problems == [] and first.objects_converted > 0
    assert again.objects_converted == 0 and again.problems == []
    assert not (tmp_path / "work" / "_state").exists()
