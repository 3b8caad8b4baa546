"""CloudTrail digest files for tests: hourly digests that name the log files a ``Trail``
delivered, with the SHA-256 of their uncompressed content, chained by previousDigest*.

``seeded_trail`` delivers a few days of logs with a digest each hour, as CloudTrail does
with log file validation on; ``Digests.write`` adds one digest (or a ``_backfill`` one)
for chosen log files, so a test can name a late object only in a backfill digest.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tests.trail import ORG, Trail

TRAIL_NAME = "org-trail"
HOME_REGION = "us-east-1"


def content_sha256(body: bytes) -> str:
    """What a digest's ``hashValue`` is: hex SHA-256 of the uncompressed log file."""
    return hashlib.sha256(gzip.decompress(body)).hexdigest()


def digest_key(
    account: str, region: str, end: datetime, *, org: str | None = ORG, backfill: bool = False
) -> str:
    owner = f"{org}/{account}" if org else account
    name = (
        f"{account}_CloudTrail-Digest_{region}_{TRAIL_NAME}_{HOME_REGION}_{end:%Y%m%dT%H%M%SZ}"
        f"{'_backfill' if backfill else ''}.json.gz"
    )
    return f"AWSLogs/{owner}/CloudTrail-Digest/{region}/{end:%Y/%m/%d}/{name}"


@dataclass
class Digests:
    """Writes digests into ``trail``'s bucket, one chain per (account, region, backfill)."""

    trail: Trail
    sign: Callable[[bytes], bytes] | None = None
    """Signs a digest's string to sign (an RSA private key's SHA256withRSA); None: a fake
    signature, no metadata."""
    last: dict[tuple[str, str, bool], tuple[str, str, str]] = field(default_factory=dict)
    """Per chain: the previous digest's key, SHA-256 and signature."""
    keys: list[str] = field(default_factory=list)

    def write(
        self,
        account: str,
        region: str,
        end: datetime,
        log_keys: list[str],
        *,
        backfill: bool = False,
        hashes: dict[str, str] | None = None,
    ) -> str:
        """A digest ending at ``end`` naming ``log_keys`` (hashes from what the trail put,
        unless ``hashes`` says otherwise)."""
        key = self.trail.prefix + digest_key(
            account, region, end, org=self.trail.org, backfill=backfill
        )
        previous = self.last.get((account, region, backfill))
        bucket = self.trail.bucket
        document = {
            "awsAccountId": account,
            "digestStartTime": _iso(end - timedelta(hours=1)),
            "digestEndTime": _iso(end),
            "digestS3Bucket": bucket,
            "digestS3Object": key,
            "digestPublicKeyFingerprint": "31e8b5433410dfb61a9dc45cc65b22ff",
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": _iso(end) if log_keys else None,
            "oldestEventTime": _iso(end - timedelta(hours=1)) if log_keys else None,
            "previousDigestS3Bucket": bucket if previous else None,
            "previousDigestS3Object": previous[0] if previous else None,
            "previousDigestHashValue": previous[1] if previous else None,
            "previousDigestHashAlgorithm": "SHA-256" if previous else None,
            "previousDigestSignature": previous[2] if previous else None,
            "logFiles": [
                {
                    "s3Bucket": bucket,
                    "s3Object": log_key,
                    "hashValue": (hashes or {}).get(log_key)
                    or content_sha256(self.trail.bodies[log_key]),
                    "hashAlgorithm": "SHA-256",
                    "newestEventTime": _iso(end),
                    "oldestEventTime": _iso(end - timedelta(hours=1)),
                }
                for log_key in log_keys
            ],
        }
        data = json.dumps(document).encode()
        if self.sign is None:
            signature = hashlib.sha256(b"signature" + data).hexdigest() * 8  # looks like RSA hex
            self.trail.put(key, gzip.compress(data))
        else:
            signed = (
                f"{document['digestEndTime']}\n{bucket}/{key}\n"
                f"{hashlib.sha256(data).hexdigest()}\n{previous[2] if previous else 'null'}"
            )
            signature = self.sign(signed.encode()).hex()
            metadata = {"signature": signature, "signature-algorithm": "SHA256withRSA"}
            self.trail.put(key, gzip.compress(data), metadata)
        self.last[(account, region, backfill)] = (key, hashlib.sha256(data).hexdigest(), signature)
        self.keys.append(key)
        return key


def seeded_trail(
    trail: Trail,
    digests: Digests,
    *,
    seed: int,
    start: datetime,
    hours: int,
    accounts: tuple[str, ...],
    regions: tuple[str, ...],
) -> list[str]:
    """Deliver ``hours`` hours of log objects (0-2 an hour per folder, seeded) from
    ``start``, with a digest at the end of each hour naming that hour's objects."""
    rng = random.Random(seed)
    delivered: list[str] = []
    for hour in range(hours):
        opened = start + timedelta(hours=hour)
        for account in accounts:
            for region in regions:
                keys = [
                    trail.deliver(
                        account,
                        region,
                        opened + timedelta(minutes=5 + 20 * n),
                        events=rng.randint(1, 4),
                    )
                    for n in range(rng.randint(0, 2))
                ]
                delivered += keys
                digests.write(account, region, opened + timedelta(hours=1, seconds=31), keys)
    return delivered


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
