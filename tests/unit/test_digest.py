"""Digest files parsed as CloudTrail writes them; what is not a digest is named, not guessed."""

from __future__ import annotations

import gzip
import hashlib
import json
from typing import Any

import pytest

from transforms.digest import (
    DigestFormatError,
    awslogs_key,
    is_backfill_digest,
    parse_digest,
    string_to_sign,
)

KEY = (
    "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/"
    "111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T150131Z.json.gz"
)
# The sample of AWS's "CloudTrail digest file structure" page (signature shortened).
SAMPLE: dict[str, Any] = {
    "awsAccountId": "111122223333",
    "digestStartTime": "2015-08-17T14:01:31Z",
    "digestEndTime": "2015-08-17T15:01:31Z",
    "digestS3Bucket": "amzn-s3-demo-bucket",
    "digestS3Object": KEY,
    "digestPublicKeyFingerprint": "31e8b5433410dfb61a9dc45cc65b22ff",
    "digestSignatureAlgorithm": "SHA256withRSA",
    "newestEventTime": "2015-08-17T14:52:27Z",
    "oldestEventTime": "2015-08-17T14:42:27Z",
    "previousDigestS3Bucket": "amzn-s3-demo-bucket",
    "previousDigestS3Object": KEY.replace("150131Z", "140131Z"),
    "previousDigestHashValue": "97fb791cf91ffc440d274f8190dbdd9aa09c34432aba82739df18b6d3c13df2d",
    "previousDigestHashAlgorithm": "SHA-256",
    "previousDigestSignature": "50887ccffad4c002b97caa37cc9dc626",
    "logFiles": [
        {
            "s3Bucket": "amzn-s3-demo-bucket",
            "s3Object": "AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/17/"
            "111122223333_CloudTrail_us-east-2_20150817T1445Z_9nYN7gp2eWAJHIfT.json.gz",
            "hashValue": "9BB6196FC6B84D6F075A56548FECA262BD99BA3C2DE41B618E5B6E22C1FC71F6",
            "hashAlgorithm": "SHA-256",
            "newestEventTime": "2015-08-17T14:52:27Z",
            "oldestEventTime": "2015-08-17T14:42:27Z",
        }
    ],
}


def test_the_documented_sample_parses_with_its_own_hash_and_its_chain_link():
    data = json.dumps(SAMPLE).encode()
    digest = parse_digest("s3://amzn-s3-demo-bucket/" + KEY, gzip.compress(data))
    assert digest.sha256 == hashlib.sha256(data).hexdigest()
    assert digest.previous_object == SAMPLE["previousDigestS3Object"]
    assert digest.previous_hash == SAMPLE["previousDigestHashValue"]
    assert not digest.backfill
    [log_file] = digest.log_files
    assert log_file.key.endswith("_9nYN7gp2eWAJHIfT.json.gz")
    assert log_file.hash_value == SAMPLE["logFiles"][0]["hashValue"].lower()


def test_a_starting_digest_has_no_previous_and_signs_null():
    start = {**SAMPLE, "logFiles": []}
    for name in ("previousDigestS3Bucket", "previousDigestS3Object", "previousDigestHashValue"):
        start[name] = None
    start["previousDigestSignature"] = None
    digest = parse_digest(KEY, gzip.compress(json.dumps(start).encode()))
    assert (digest.previous_object, digest.log_files) == (None, ())
    signed = string_to_sign(digest).decode().split("\n")
    assert signed == [
        "2015-08-17T15:01:31Z",
        f"amzn-s3-demo-bucket/{KEY}",
        digest.sha256,
        "null",
    ]


@pytest.mark.parametrize(
    ("key", "backfill"),
    [
        (KEY, False),
        (KEY.replace(".json.gz", "_backfill.json.gz"), True),
        ("AWSLogs/1/CloudTrail/us-east-1/2024/01/01/x_backfill.json", False),
    ],
)
def test_backfill_digests_are_told_by_their_name(key, backfill):
    assert is_backfill_digest(key) is backfill


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("s3://trail/prefix/AWSLogs/1/CloudTrail/x.json.gz", "AWSLogs/1/CloudTrail/x.json.gz"),
        ("/tmp/copy/AWSLogs/1/CloudTrail/x.json.gz", "AWSLogs/1/CloudTrail/x.json.gz"),
        ("AWSLogs/1/x", "AWSLogs/1/x"),
        ("no-layout/x", "no-layout/x"),
    ],
)
def test_keys_compare_from_awslogs_on(given, expected):
    assert awslogs_key(given) == expected


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x1f\x8b\x08\x00broken", "not readable gzip"),
        (gzip.compress(b"{not json", mtime=0), "not JSON"),
        (gzip.compress(b"[1, 2]", mtime=0), "not a JSON object"),
        (gzip.compress(json.dumps({"logFiles": []}).encode(), mtime=0), "has no digestStartTime"),
        (
            gzip.compress(
                json.dumps({**SAMPLE, "logFiles": [{"s3Bucket": "b"}]}).encode(), mtime=0
            ),
            "lacks s3Bucket, s3Object or hashValue",
        ),
        (gzip.compress(json.dumps({**SAMPLE, "logFiles": {}}).encode(), mtime=0), "not a list"),
    ],
)
def test_what_is_not_a_digest_is_named_with_the_reason(data, reason):
    with pytest.raises(DigestFormatError, match=reason) as raised:
        parse_digest("s3://t/" + KEY, data)
    assert raised.value.key == "s3://t/" + KEY
