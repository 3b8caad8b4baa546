"""Drop-in compatibility: the seed's queries and common security questions, each with the
answer computed straight from the raw CloudTrail JSON, to compare with any engine's.

Answers are multisets of row tuples (queries carry no ORDER BY / LIMIT, except the
seed's template, which is compared as a sample). Two oracles compute them:

- ``records_once_by_event_id``: *our design*. Each eventID once (the table drops
  CloudTrail's redeliveries) and each event in the partition of its ``eventTime``.
  It checks that our table does what we decided, not what the standard table does.
- ``raw_table_records``: *what ``CloudTrailSerde`` returns*. Every record of every log
  object, redeliveries included, each in the partition of the delivery folder it sits in.

The two must agree on every question that filters on no partition column, over logs that
hold no redelivery (``Question.partitioned`` says which filter); elsewhere they differ on
purpose: a redelivery counts twice in the raw table, and an event logged before midnight
but delivered after it sits in the next day's folder there.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.helpers import as_text

Record = dict[str, Any]
Answer = Counter[tuple[Any, ...]]

SEED_ANONYMOUS_S3 = """SELECT *
FROM cloudtrail_logs
WHERE
    eventsource = 's3.amazonaws.com' AND
    eventname in ('GetObject') AND
    useridentity.accountid LIKE '%ANONYMOUS%' AND
    useridentity.arn IS NULL AND
    requestparameters LIKE '%[your bucket name ]%'"""
SEED_TEMPLATE = """SELECT
 useridentity.arn,
 eventname,
 sourceipaddress,
 eventtime
FROM cloudtrail_logs
LIMIT 100"""


@dataclass(frozen=True)
class Question:
    """A query written for the standard table, and its answer from the raw records."""

    name: str
    sql: str
    answer: Callable[[list[Record]], Answer]
    columns: tuple[str, ...] | None = None
    """Compare only these result columns (``SELECT *`` returns our extra columns too)."""
    sample: int | None = None
    """The query has a LIMIT: its rows must be a sample of the answer, this many or all."""
    partitioned: bool = False
    """It filters on partition columns: the raw table (delivery folders) answers otherwise."""


class RawRecord(dict[str, Any]):
    """A record as the raw table holds it: with the delivery folder it was found in."""

    delivered: tuple[str, str, str, str]


def _get(record: Record, *path: str) -> Any:
    value: Any = record
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def event_partition(record: Record) -> tuple[str, str, str, str]:
    """The partition a record belongs in: its region and its eventTime's UTC day."""
    when = datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00")).astimezone(UTC)
    return (record["awsRegion"], f"{when:%Y}", f"{when:%m}", f"{when:%d}")


def delivery_partition(record: Record) -> tuple[str, str, str, str]:
    """The partition the raw table shows a record in: its delivery folder's."""
    if isinstance(record, RawRecord):
        return record.delivered
    raise TypeError("only raw-table records know their delivery folder")


@dataclass(frozen=True)
class S3Access:
    """The seed's anonymous-S3 question, with its placeholders: which bucket, which API call,
    and which principal (a ``userIdentity`` member and the text it contains)."""

    bucket: str = "[your bucket name ]"
    event_name: str = "GetObject"
    member: tuple[str, str] = ("accountid", "accountId")
    """(column, JSON key) of the ``userIdentity`` member matched."""
    contains: str = "ANONYMOUS"

    def sql(self) -> str:
        column = self.member[0]
        return (
            SEED_ANONYMOUS_S3.replace("[your bucket name ]", self.bucket)
            .replace("('GetObject')", f"('{self.event_name}')")
            .replace("useridentity.accountid LIKE '%ANONYMOUS%'",
                     f"useridentity.{column} LIKE '%{self.contains}%'")
        )  # fmt: skip

    def answer(self, records: list[Record]) -> Answer:
        return Counter(
            (r["eventID"],)
            for r in records
            if r.get("eventSource") == "s3.amazonaws.com"
            and r.get("eventName") in (self.event_name,)
            and self.contains in (as_text(_get(r, "userIdentity", self.member[1])) or "")
            and _get(r, "userIdentity", "arn") is None
            and self.bucket in (as_text(r.get("requestParameters")) or "")
        )


SEED_S3_ACCESS = S3Access()
"""The seed's query as written: anonymous GetObject calls on the placeholder bucket."""


def _template(records: list[Record]) -> Answer:
    return Counter(
        (
            as_text(_get(r, "userIdentity", "arn")),
            r.get("eventName"),
            r.get("sourceIPAddress"),
            r.get("eventTime"),
        )
        for r in records
    )


def questions(
    day: tuple[str, str, str, str],
    s3_access: S3Access = SEED_S3_ACCESS,
    partition_of: Callable[[Record], tuple[str, str, str, str]] = event_partition,
) -> list[Question]:
    """The seed's two queries and the common security questions; ``day`` names a partition.

    ``s3_access`` fills the seed's anonymous-S3 placeholders (data with no anonymous access
    needs other values to have an answer); ``partition_of`` places a record (the raw table:
    ``delivery_partition``).
    """
    region, year, month, dd = day
    return [
        Question("seed_anonymous_s3", s3_access.sql(), s3_access.answer, columns=("eventid",)),
        Question("seed_template", SEED_TEMPLATE, _template, sample=100),
        Question(
            "count_by_eventname",
            "SELECT eventname, count(*) AS n FROM cloudtrail_logs GROUP BY eventname",
            lambda rs: _counted(r.get("eventName") for r in rs),
        ),
        Question(
            "errors_by_source_and_code",
            "SELECT eventsource, errorcode, count(*) AS n FROM cloudtrail_logs "
            "WHERE errorcode IS NOT NULL GROUP BY eventsource, errorcode",
            lambda rs: _counted(
                (r.get("eventSource"), r["errorCode"]) for r in rs if r.get("errorCode") is not None
            ),
        ),
        Question(
            "one_day_writes",
            "SELECT eventid, eventname FROM cloudtrail_logs "
            f"WHERE region = '{region}' AND year = '{year}' AND month = '{month}' "
            f"AND day = '{dd}' AND readonly = 'false'",
            lambda rs: Counter(
                (r["eventID"], r.get("eventName"))
                for r in rs
                if partition_of(r) == day and as_text(r.get("readOnly")) == "false"
            ),
            partitioned=True,
        ),
        Question(
            "sessions_by_issuer",
            "SELECT useridentity.sessioncontext.sessionissuer.arn AS issuer, count(*) AS n "
            "FROM cloudtrail_logs "
            "WHERE useridentity.sessioncontext.sessionissuer.arn IS NOT NULL "
            "GROUP BY useridentity.sessioncontext.sessionissuer.arn",
            lambda rs: _counted(
                issuer
                for r in rs
                if (issuer := _get(r, "userIdentity", "sessionContext", "sessionIssuer", "arn"))
                is not None
            ),
        ),
        Question(
            "resource_types",
            "SELECT r.type AS type, count(*) AS n "
            "FROM cloudtrail_logs CROSS JOIN UNNEST(resources) AS t(r) GROUP BY r.type",
            lambda rs: _counted(
                _get(item, "type")
                for r in rs
                if isinstance(r.get("resources"), list)
                for item in r["resources"]
            ),
        ),
    ]


def _counted(keys: Iterable[Any]) -> Answer:
    """A GROUP BY ... count(*) answer: one (key..., n) row per distinct key."""
    counts = Counter(keys)
    return Counter((*(key if isinstance(key, tuple) else (key,)), n) for key, n in counts.items())


def answer_of(rows: list[dict[str, Any]], question: Question) -> Answer:
    """An engine's result rows as an answer (only the compared columns)."""
    if question.columns:
        return Counter(tuple(row[c] for c in question.columns) for row in rows)
    return Counter(tuple(row.values()) for row in rows)


def assert_same_answer(rows: list[dict[str, Any]], question: Question, records: list[Record]):
    """The engine's rows answer ``question`` as the raw records do."""
    expected = question.answer(records)
    got = answer_of(rows, question)
    if question.sample is not None:
        assert got.total() == min(question.sample, expected.total()), question.name
        assert not got - expected, f"{question.name}: rows not in the raw answer"
        return
    assert got == expected, f"{question.name}: {got - expected} extra, {expected - got} missing"


def records_once_by_event_id(root: Path) -> list[Record]:
    """Our design's oracle: every record of the gzip log objects under ``root``, each eventID
    once (the first delivered), to be placed by its ``eventTime`` (``event_partition``)."""
    seen: set[Any] = set()
    records: list[Record] = []
    for record in raw_table_records(root):
        event_id = record.get("eventID")
        if event_id is not None and event_id in seen:
            continue
        seen.add(event_id)
        records.append(dict(record))
    return records


raw_records = records_once_by_event_id
"""The name other tests knew it by."""


def raw_table_records(root: Path) -> list[Record]:
    """What the standard table over the raw JSON reads (``CloudTrailSerde``): every record of
    every log object under ``root``, redeliveries included, each with its delivery folder."""
    records: list[Record] = []
    for path in sorted(root.rglob("*.json.gz")):
        if "CloudTrail-Insight" in path.parts or "CloudTrail-Digest" in path.parts:
            continue
        region, year, month, dd = path.parent.parts[-4:]
        for record in json.loads(gzip.decompress(path.read_bytes()))["Records"]:
            raw = RawRecord(record)
            raw.delivered = (region, year, month, dd)
            records.append(raw)
    return records


def raw_table_questions(day: tuple[str, str, str, str], s3_access: S3Access = SEED_S3_ACCESS):
    """The questions as the raw table answers them: partitions are delivery folders."""
    return questions(day, s3_access, partition_of=delivery_partition)


def redelivered(records: list[Record]) -> int:
    """How many records repeat an eventID already delivered (the raw table counts them)."""
    return len(records) - len({r.get("eventID") for r in records})


# --- Hand-made test data: a few records per question ----------------------------------

ACCOUNT = "111122223333"
ANONYMOUS = {"type": "AWSAccount", "principalId": "", "accountId": "ANONYMOUS_PRINCIPAL"}
ROLE = "arn:aws:iam::111122223333:role/{}"


def assumed(role: str) -> dict:
    return {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::111122223333:assumed-role/{role}/s",
        "accountId": ACCOUNT,
        "sessionContext": {
            "attributes": {"mfaAuthenticated": "false", "creationDate": "2024-01-05T10:00:00Z"},
            "sessionIssuer": {"type": "Role", "arn": ROLE.format(role), "accountId": ACCOUNT},
        },
    }


def hand_made_records() -> dict[str, list[Record]]:
    """A few records per question, keyed by the delivery folder (region/yyyy/mm/dd)."""

    def ev(i: int, time: str, region: str = "us-east-1", **fields) -> dict:
        return {"eventVersion": "1.09", "eventID": f"e{i:02d}", "eventTime": time,
                "awsRegion": region, "recipientAccountId": ACCOUNT, **fields}  # fmt: skip

    bucket = {"bucketName": "[your bucket name ]", "key": "k"}
    s3: dict[str, Any] = {
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "readOnly": True,
    }
    return {
        "us-east-1/2024/01/05": [
            ev(1, "2024-01-05T10:00:00Z", userIdentity=ANONYMOUS, requestParameters=bucket, **s3),
            ev(2, "2024-01-05T10:01:00Z", userIdentity={**ANONYMOUS, "arn": "arn:x"},
               requestParameters=bucket, **s3),
            ev(3, "2024-01-05T10:02:00Z", userIdentity=ANONYMOUS,
               requestParameters={"bucketName": "other"}, **s3),
            ev(4, "2024-01-05T11:00:00Z", userIdentity=assumed("admin"),
               eventSource="iam.amazonaws.com", eventName="CreateUser", readOnly=False,
               resources=[{"ARN": "arn:aws:iam::111122223333:user/u", "accountId": ACCOUNT,
                           "type": "AWS::IAM::User"}]),
            ev(5, "2024-01-05T11:05:00Z", userIdentity=assumed("admin"),
               eventSource="iam.amazonaws.com", eventName="AttachUserPolicy", readOnly="false",
               errorCode="AccessDenied", errorMessage="no",
               resources=[{"type": "AWS::IAM::User"}, {"type": "AWS::IAM::Policy"}, None]),
            ev(6, "2024-01-05T12:00:00Z", userIdentity=assumed("ci"),
               eventSource="ssm.amazonaws.com", eventName="GetParameter", readOnly=True,
               errorCode="ThrottlingException", resources=[]),
            ev(7, "2024-01-05T12:00:01Z", userIdentity=assumed("ci"),
               eventSource="ssm.amazonaws.com", eventName="GetParameter", readOnly=True,
               errorCode="ThrottlingException", sourceIPAddress="10.0.0.1"),
        ],
        # Delivered on the 6th: one logged before midnight belongs to the 5th's partition.
        "us-east-1/2024/01/06": [
            ev(8, "2024-01-05T23:59:59Z", userIdentity=assumed("ci"),
               eventSource="ec2.amazonaws.com", eventName="RunInstances", readOnly=False,
               resources=[{"ARN": "arn:aws:ec2:us-east-1:1:instance/i-1", "type": None}]),
            ev(9, "2024-01-06T00:00:01Z", userIdentity=assumed("admin"),
               eventSource="ec2.amazonaws.com", eventName="TerminateInstances", readOnly=False,
               errorCode="Client.UnauthorizedOperation"),
            ev(4, "2024-01-05T11:00:00Z", eventName="CreateUser"),  # a redelivery of e04
        ],
        "eu-west-1/2024/01/05": [
            ev(10, "2024-01-05T09:00:00Z", "eu-west-1", userIdentity={"type": "Root"},
               eventSource="signin.amazonaws.com", eventName="ConsoleLogin", readOnly=False,
               newField={"AWS adds": "fields"}),
        ],
    }  # fmt: skip


def insight_records() -> dict[str, list[Record]]:
    """Insights events as AWS documents them: a Start and an End sharing a sharedEventID."""

    def insight(i: int, time: str, state: str, **details) -> dict:
        return {
            "eventVersion": "1.08", "eventTime": time, "awsRegion": "us-east-1",
            "eventID": f"i{i:02d}", "eventType": "AwsCloudTrailInsight",
            "recipientAccountId": ACCOUNT, "sharedEventID": "shared-1",
            "insightDetails": {
                "state": state, "eventSource": "iam.amazonaws.com",
                "eventName": "AttachUserPolicy", "insightType": "ApiErrorRateInsight",
                "errorCode": "AccessDenied",
                "insightContext": {"statistics": {"baseline": {"average": 0.0},
                                                  "insight": {"average": 3.5},
                                                  "insightDuration": 4}},
                **details,
            },
            "eventCategory": "Insight",
        }  # fmt: skip

    return {
        "us-east-1/2024/01/05": [
            insight(1, "2024-01-05T11:00:00Z", "Start"),
            insight(2, "2024-01-05T23:59:00Z", "End", newDetail="kept in unmapped"),
        ]
    }


def write_logs(
    root: Path, folders: dict[str, list[Record]], kind: str = "CloudTrail"
) -> list[Path]:
    """Write gzip log objects as CloudTrail lays them out, one per delivery folder."""
    written = []
    for folder, records in folders.items():
        name = f"{ACCOUNT}_{kind}_{folder.split('/')[0]}_x.json.gz"
        path = root / f"AWSLogs/{ACCOUNT}/{kind}/{folder}/{name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(json.dumps({"Records": records}).encode()))
        written.append(path)
    return written
