"""Small CloudTrail trails for tests: real key layout and names, records with unique eventIDs.

A ``Trail`` writes objects to an S3 bucket (through the moto server) or a local
folder, and remembers every eventID it wrote, so a test can check the table holds
each exactly once.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ORG = "o-abcdef1234"
ACCOUNT_A = "111122223333"
ACCOUNT_B = "444455556666"


def log_name(account: str, region: str, at: datetime, unique: str) -> str:
    """CloudTrail's object name: ``ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_UNIQUE.json.gz``."""
    return f"{account}_CloudTrail_{region}_{at:%Y%m%dT%H%M}Z_{unique}.json.gz"


def log_key(
    account: str, region: str, at: datetime, unique: str, *, org: str | None = ORG, prefix: str = ""
) -> str:
    """The key CloudTrail delivers an object to at time ``at`` (its folder is that day)."""
    owner = f"{org}/{account}" if org else account
    return (
        f"{prefix}AWSLogs/{owner}/CloudTrail/{region}/{at:%Y/%m/%d}/"
        f"{log_name(account, region, at, unique)}"
    )


def record(event_id: str, at: datetime, region: str, account: str) -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "eventID": event_id,
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "awsRegion": region,
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "recipientAccountId": account,
        "requestParameters": {"bucketName": "b", "key": event_id},
    }


@dataclass
class Trail:
    """Writes log objects to ``s3://bucket/prefix`` (with ``client``) or under ``root``."""

    client: Any = None
    bucket: str = "trail"
    root: Path | None = None
    prefix: str = ""
    org: str | None = ORG
    event_ids: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    bodies: dict[str, bytes] = field(default_factory=dict)
    """The bytes last put at each key (digests name their content's hash)."""
    _serial: int = 0

    def deliver(
        self,
        account: str,
        region: str,
        at: datetime,
        *,
        events: int = 3,
        unique: str | None = None,
        extra_records: list[dict[str, Any]] | None = None,
    ) -> str:
        """One object delivered at ``at`` holding ``events`` new events from just before it."""
        self._serial += 1
        unique = unique or f"u{self._serial:05d}"
        records = []
        for n in range(events):
            event_id = f"{account}-{region}-{self._serial:05d}-{n:03d}"
            records.append(record(event_id, at - timedelta(minutes=5, seconds=n), region, account))
            self.event_ids.append(event_id)
        records += extra_records or []
        key = log_key(account, region, at, unique, org=self.org, prefix=self.prefix)
        self.put(key, gzip.compress(json.dumps({"Records": records}).encode()))
        return key

    def put(self, key: str, body: bytes, metadata: dict[str, str] | None = None) -> None:
        self.keys.append(key)
        self.bodies[key] = body
        if self.client is not None:
            extra = {"Metadata": metadata} if metadata else {}
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)
        else:
            assert self.root is not None
            path = self.root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)

    def delete(self, key: str) -> None:
        if self.client is not None:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        else:
            assert self.root is not None
            (self.root / key).unlink()

    @property
    def url(self) -> str:
        if self.client is not None:
            return f"s3://{self.bucket}/{self.prefix}"
        assert self.root is not None
        return str(self.root / self.prefix)


def at(day: str, hhmm: str = "1200") -> datetime:
    """``at("2024-03-10", "0930")``: a UTC time."""
    parsed = date.fromisoformat(day)
    return datetime(parsed.year, parsed.month, parsed.day, int(hhmm[:2]), int(hhmm[2:]), tzinfo=UTC)


def table_rows(table_url: str) -> list[tuple[str, str]]:
    """(partition folder, eventID) of every row of the events table at ``table_url``."""
    import io

    import pyarrow.parquet as pq

    from flows.storage import Storage

    store = Storage(table_url)
    events = store.path("events")
    rows = []
    for stored in store.list_files(events):
        if not stored.path.endswith(".parquet"):
            continue
        partition = stored.path[len(events) + 1 :].rsplit("/", 1)[0]
        table = pq.read_table(io.BytesIO(store.read(stored.path)), columns=["eventid"])
        rows += [(partition, event_id) for event_id in table.column("eventid").to_pylist()]
    return rows


def assert_exactly_once(table_url: str, expected: list[str]) -> None:
    """Every expected eventID is in the table once, and nothing else is."""
    from collections import Counter

    counts = Counter(event_id for _, event_id in table_rows(table_url))
    twice = {e: n for e, n in counts.items() if n > 1}
    assert not twice, f"{len(twice)} eventIDs more than once, e.g. {list(twice.items())[:3]}"
    missing = set(expected) - set(counts)
    assert not missing, f"{len(missing)} eventIDs missing, e.g. {sorted(missing)[:3]}"
    assert set(counts) == set(expected)
