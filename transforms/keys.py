"""Where an object key sits in the CloudTrail layout, and where its events go.

CloudTrail writes ``[prefix/]AWSLogs/[o-ORGID/]ACCOUNT/<kind>/REGION/YYYY/MM/DD/FILE``
with kind ``CloudTrail`` (API events), ``CloudTrail-Digest`` (integrity digests, no
Records) or ``CloudTrail-Insight`` (Insights events). The folder date is the
*delivery* date: the table is partitioned by each event's own time instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from transforms.errors import UnrecognisedKeyError

ObjectKind = Literal["events", "digest", "insight"]

_KIND_BY_FOLDER: dict[str, ObjectKind] = {
    "CloudTrail": "events",
    "CloudTrail-Digest": "digest",
    "CloudTrail-Insight": "insight",
}

_LOG_KEY = re.compile(
    r"(?:^|/)AWSLogs/"
    r"(?:(?P<org>o-[a-z0-9]{10,32})/)?"
    r"(?P<account>\d{12})/"
    r"(?P<folder>CloudTrail|CloudTrail-Digest|CloudTrail-Insight)/"
    r"(?P<region>[a-z0-9-]+)/"
    r"(?P<year>\d{4})/(?P<month>\d{2})/(?P<day>\d{2})/"
    r"(?P<file>[^/]+\.json(?:\.gz)?)$"
)

REGION_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
"""A region as a path-safe name. Regions are data: AWS adds them, anonymised logs invent them."""


@dataclass(frozen=True)
class LogObject:
    """A parsed CloudTrail object key."""

    key: str
    kind: ObjectKind
    account: str
    region: str
    delivery_date: date
    org_id: str | None = None


def parse_key(key: str) -> LogObject:
    """Route an object key; raise ``UnrecognisedKeyError`` for anything not in the layout."""
    match = _LOG_KEY.search(key)
    if match is None:
        raise UnrecognisedKeyError("not a CloudTrail log object key", key=key)
    try:
        delivered = date(int(match["year"]), int(match["month"]), int(match["day"]))
    except ValueError:
        raise UnrecognisedKeyError("date folders are not a calendar date", key=key) from None
    return LogObject(
        key=key,
        kind=_KIND_BY_FOLDER[match["folder"]],
        account=match["account"],
        region=match["region"],
        delivery_date=delivered,
        org_id=match["org"],
    )


def partition_path(region: str, year: str, month: str, day: str) -> str:
    """The Hive partition folder of a day of events, relative to the table root."""
    return f"region={region}/year={year}/month={month}/day={day}"
