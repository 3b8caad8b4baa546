"""Routing of object keys and partition paths, as tables of literal cases."""

from __future__ import annotations

from datetime import date

import pytest

from transforms.errors import UnrecognisedKeyError
from transforms.keys import parse_key, partition_path

ROUTES = [
    # (key, kind, account, region, delivery date, org)
    (
        "AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/05/"
        "123456789012_CloudTrail_us-east-1_20240105T0000Z_abc.json.gz",
        "events", "123456789012", "us-east-1", date(2024, 1, 5), None,
    ),
    (
        "my-bucket/prefix/AWSLogs/o-a1b2c3d4e5/123456789012/CloudTrail/eu-west-1/2023/12/31/"
        "123456789012_CloudTrail_eu-west-1_20231231T2355Z_x.json.gz",
        "events", "123456789012", "eu-west-1", date(2023, 12, 31), "o-a1b2c3d4e5",
    ),
    (
        "s3://b/AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/01/05/"
        "123456789012_CloudTrail-Digest_us-east-1_trail_us-east-1_20240105T010203Z.json.gz",
        "digest", "123456789012", "us-east-1", date(2024, 1, 5), None,
    ),
    (
        "/data/AWSLogs/123456789012/CloudTrail-Insight/ap-south-2/2024/02/29/"
        "123456789012_CloudTrail-Insight_ap-south-2_20240229T1200Z_y.json.gz",
        "insight", "123456789012", "ap-south-2", date(2024, 2, 29), None,
    ),
    (  # A region AWS has not launched yet (or an anonymised one): regions are data.
        "AWSLogs/123456789012/CloudTrail/mars-north-7/2024/01/05/f.json",
        "events", "123456789012", "mars-north-7", date(2024, 1, 5), None,
    ),
]  # fmt: skip


@pytest.mark.parametrize(("key", "kind", "account", "region", "delivered", "org"), ROUTES)
def test_routes_cloudtrail_keys(key, kind, account, region, delivered, org):
    parsed = parse_key(key)
    assert (parsed.kind, parsed.account, parsed.region, parsed.delivery_date, parsed.org_id) == (
        kind,
        account,
        region,
        delivered,
        org,
    )


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("README.md", "not a CloudTrail log object key"),
        ("AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/05/", "not a CloudTrail"),
        ("AWSLogs/12345/CloudTrail/us-east-1/2024/01/05/f.json.gz", "not a CloudTrail"),
        ("AWSLogs/123456789012/CloudTrail/us-east-1/2024/1/5/f.json.gz", "not a CloudTrail"),
        ("AWSLogs/123456789012/CloudTrail/US_EAST/2024/01/05/f.json.gz", "not a CloudTrail"),
        ("AWSLogs/123456789012/Config/us-east-1/2024/01/05/f.json.gz", "not a CloudTrail"),
        ("AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/05/f.csv", "not a CloudTrail"),
        ("AWSLogs/123456789012/CloudTrail/us-east-1/2024/02/30/f.json.gz", "not a calendar date"),
    ],
)
def test_reports_other_keys_without_guessing(key, reason):
    with pytest.raises(UnrecognisedKeyError, match=reason) as raised:
        parse_key(key)
    assert raised.value.key == key


@pytest.mark.parametrize(
    ("parts", "path"),
    [
        (("us-east-1", "2024", "01", "05"), "region=us-east-1/year=2024/month=01/day=05"),
        (("eu-central-1", "2017", "12", "11"), "region=eu-central-1/year=2017/month=12/day=11"),
    ],
)
def test_partition_paths_are_hive_style(parts, path):
    assert partition_path(*parts) == path
