"""A small corpus of every kind of broken and strange input, with what must come of it.

``build_hostile_corpus(root)`` writes log objects under ``root/AWSLogs/...`` and
returns a ``HostileCorpus``: the eventIDs that must be in the table exactly once,
and the problems (object, record position, reason) that must be reported. Every
record carries canary strings (``CANARY-...``) that must never appear in a log.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCOUNT = "111122223333"
FOLDER = f"AWSLogs/{ACCOUNT}/CloudTrail/{{region}}/2024/01/{{day}}"
CANARY = "CANARY-7f3a"
"""In every payload, identity and broken record: a log line holding it leaked event contents."""
SECRET_CANARY = "AKIACANARYSECRETKEY0"


@dataclass(frozen=True)
class Expected:
    """A problem that must be reported: object name, record position (None: the object)."""

    name: str
    record: int | None
    reason: str
    """A fragment of the reason."""


@dataclass
class HostileCorpus:
    root: Path
    good: list[str] = field(default_factory=list)
    """eventIDs that must be in the table, each exactly once."""
    problems: list[Expected] = field(default_factory=list)
    objects: dict[str, Path] = field(default_factory=dict)
    """Object name -> its file."""
    unrecognised: list[str] = field(default_factory=list)
    """Keys that are no CloudTrail log (reported, not quarantined)."""

    def key(self, name: str) -> str:
        return self.objects[name].relative_to(self.root).as_posix()


def event(event_id: str, day: str = "05", **extra: Any) -> dict[str, Any]:
    """A plausible API event; ``extra`` overrides or adds fields."""
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": f"AROAEXAMPLE:{CANARY}-session",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/{CANARY}",
            "accountId": ACCOUNT,
            "accessKeyId": SECRET_CANARY,
        },
        "eventTime": f"2024-01-{day}T10:00:{len(event_id) % 60:02d}Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": f"aws-cli/2 {CANARY}-agent",
        "requestParameters": {"bucketName": "secrets", "key": f"{CANARY}/payroll.csv"},
        "responseElements": None,
        "requestID": f"req-{event_id}",
        "eventID": event_id,
        "readOnly": True,
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT,
    }
    record.update(extra)
    return record


def encoded(records: list[Any]) -> bytes:
    return json.dumps({"Records": records}, separators=(",", ":")).encode()


class _Writer:
    def __init__(self, corpus: HostileCorpus) -> None:
        self.corpus = corpus

    def put(self, name: str, data: bytes, region: str = "us-east-1", day: str = "06") -> Path:
        folder = FOLDER.format(region=region, day=day)
        path = self.corpus.root / folder / f"{ACCOUNT}_CloudTrail_{region}_{name}.json.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.corpus.objects[name] = path
        return path

    def good(self, *event_ids: str) -> None:
        self.corpus.good.extend(event_ids)

    def problem(self, name: str, record: int | None, reason: str) -> None:
        self.corpus.problems.append(Expected(name, record, reason))


def _noise(seed: str) -> str:
    """Text that does not compress away, so a cut gzip stream ends mid-corpus."""
    return "".join(hashlib.sha256(f"{seed}{i}".encode()).hexdigest() for i in range(8))


def _complete_records(document: bytes, readable: int, event_ids: list[str]) -> list[str]:
    """The eventIDs of the records of ``document`` that end within its first bytes."""
    kept = []
    for event_id in event_ids:
        end = document.index(f'"eventID":"{event_id}"'.encode())
        end = document.index(b"}", document.index(b'"recipientAccountId"', end)) + 1
        if end <= readable:
            kept.append(event_id)
    return kept


def build_hostile_corpus(root: Path) -> HostileCorpus:
    """Write the corpus under ``root`` and say what must come of it."""
    corpus = HostileCorpus(root)
    w = _Writer(corpus)

    # Good objects, two regions and two days; g1 delivered twice (a duplicate, not a problem).
    w.put("good", gzip.compress(encoded([event(f"g{i}") for i in range(1, 6)])))
    w.put(
        "good-eu",
        gzip.compress(encoded([event("g6", awsRegion="eu-west-1", day="04")])),
        "eu-west-1",
    )
    w.put("redelivered", gzip.compress(encoded([event("g1"), event("g7")])), day="07")
    w.good("g1", "g2", "g3", "g4", "g5", "g6", "g7")

    # Truncated gzip: the records complete before the cut are kept.
    ids = [f"tz{i}" for i in range(1, 9)]
    document = encoded([event(i, requestParameters={"nonce": _noise(i)}) for i in ids])
    packed = gzip.compress(document)
    cut = packed[: len(packed) * 3 // 5]
    w.put("truncated-gzip", cut)
    readable = len(zlib.decompressobj(wbits=31).decompress(cut))
    w.good(*_complete_records(document, readable, ids))
    w.problem("truncated-gzip", None, "gzip stream is damaged")

    # Bytes that are not gzip (nor JSON), and a zero-byte object.
    w.put("not-gzip", b"PK\x03\x04 this is a zip, not a log " + CANARY.encode())
    w.problem("not-gzip", None, "not valid JSON")
    w.put("zero-byte", b"")
    w.problem("zero-byte", None, "empty object")

    # Truncated JSON (gzip whole): complete records before the cut are kept.
    ids = [f"tj{i}" for i in range(1, 6)]
    document = encoded([event(i) for i in ids])
    cut_at = document.index(b'"eventID":"tj4"')
    w.put("truncated-json", gzip.compress(document[:cut_at]))
    w.good("tj1", "tj2", "tj3")
    w.problem("truncated-json", None, "kept the 3 complete records")

    # Envelopes of the wrong shape.
    w.put(
        "no-records",
        gzip.compress(b'{"digestStartTime":"2024-01-06T00:00:00Z","x":"' + CANARY.encode() + b'"}'),
    )
    w.problem("no-records", None, "no Records key")
    w.put(
        "records-not-list",
        gzip.compress(
            json.dumps(
                {"Records": event("nl1", requestParameters={"nonce": _noise("nl1")})}
            ).encode()
        ),
    )
    w.problem("records-not-list", None, "Records is a JSON object, not an array")
    w.put("top-level-array", gzip.compress(json.dumps([event("ta1")]).encode()))
    w.problem("top-level-array", None, "top level is a JSON array")

    # Bytes that are not UTF-8, inside records: only those records are lost.
    good_u = [event("u1"), event("u4")]
    bad_agent = (
        json.dumps(event("u2", userAgent="AGENT"))
        .encode()
        .replace(b"AGENT", b"\xff\xfe" + CANARY.encode())
    )
    bad_payload = (
        json.dumps(event("u3", requestParameters={"k": "VALUE"}))
        .encode()
        .replace(b"VALUE", b"caf\xe9")
    )
    body = (
        b'{"Records":['
        + b",".join(
            [json.dumps(good_u[0]).encode(), bad_agent, bad_payload, json.dumps(good_u[1]).encode()]
        )
        + b"]}"
    )
    w.put("not-utf8", gzip.compress(body))
    w.good("u1", "u4")
    w.problem("not-utf8", 1, "not valid UTF-8")
    w.problem("not-utf8", 2, "not valid UTF-8")

    # Records that are not objects, beside one that is.
    w.put(
        "records-not-objects",
        gzip.compress(encoded([1, CANARY, None, [event("no1")], event("r5")])),
    )
    w.good("r5")
    for position in range(4):
        w.problem("records-not-objects", position, "record is not a JSON object")

    # Times that are missing or not times; a region that would climb out of the table.
    no_time = event("bt1")
    del no_time["eventTime"]
    w.put(
        "bad-times",
        gzip.compress(
            encoded(
                [
                    no_time,
                    event("bt2", eventTime="redacted"),
                    event("bt3", eventTime="2022-12-11 19:42:55"),
                    event("bt4"),
                    event("bt5", awsRegion="../../../../tmp/escape"),
                ]
            )
        ),
    )
    w.good("bt4")
    w.problem("bad-times", 0, "record has no eventTime")
    w.problem("bad-times", 1, "eventTime is not an ISO-8601 time")
    w.problem("bad-times", 2, "eventTime is not an ISO-8601 time")
    w.problem("bad-times", 4, "awsRegion is not a region name")

    # Records of several MB.
    big = "x" * (4 * 1024 * 1024)
    w.put(
        "huge",
        gzip.compress(
            encoded(
                [
                    event("h1", requestParameters={"policy": big, "note": CANARY}),
                    event("h2", brandNewField={"blob": "y" * (1024 * 1024)}),
                    event("h3"),
                ]
            )
        ),
    )
    w.good("h1", "h2", "h3")

    # Payload types that drift between events, and strange identities: all kept.
    w.put(
        "drifting",
        gzip.compress(
            encoded(
                [
                    event("d1", requestParameters=f"{CANARY} as a string"),
                    event("d2", requestParameters={"nested": {"deep": [1, 2, {"x": CANARY}]}}),
                    event("d3", readOnly="True"),
                    event("d4", responseElements=12.50, additionalEventData=[CANARY]),
                    event("d5", resources={"ARN": f"arn:aws:s3:::{CANARY}"}),
                    event("d6", tlsDetails=f"TLSv1.2 {CANARY}"),
                    event("d7", userIdentity=f"{CANARY} identity as text"),
                    event("d8", userIdentity={"principalId": CANARY, "accountId": ACCOUNT}),
                    event(
                        "d9",
                        userIdentity={
                            "type": "FutureIdentity",
                            "newPart": {"x": CANARY},
                            "sessionContext": {
                                "newContext": CANARY,
                                "attributes": {"mfaAuthenticated": True},
                            },
                        },
                    ),
                ]
            )
        ),
    )
    w.good(*[f"d{i}" for i in range(1, 10)])

    # Deep nesting, a broken record between good ones, a byte order mark.
    deep = (
        json.dumps(event("dn2", requestParameters="DEEP"))
        .encode()
        .replace(b'"DEEP"', b"[" * 20_000 + b"]" * 20_000)
    )
    broken = json.dumps(event("bk2")).encode().replace(b'"eventName"', b',"eventName"', 1)
    body = (
        b'{"Records":['
        + b",".join(
            [json.dumps(event("dn1")).encode(), deep, broken, json.dumps(event("dn3")).encode()]
        )
        + b"]}"
    )
    w.put("deep-and-broken", gzip.compress(body))
    w.good("dn1", "dn3")
    w.problem("deep-and-broken", 1, "nests values too deeply")
    w.problem("deep-and-broken", 2, "record is not valid JSON")
    w.put("bom", gzip.compress(b"\xef\xbb\xbf" + encoded([event("bom1")])))
    w.good("bom1")

    # A key that is no CloudTrail log, in a folder the ingest lists: reported, never guessed at.
    stray = root / FOLDER.format(region="us-east-1", day="06") / "notes.txt"
    stray.write_text(f"not a log {CANARY}")
    corpus.unrecognised.append(stray.relative_to(root).as_posix())
    return corpus


def upload_corpus(client: Any, bucket: str, corpus: HostileCorpus) -> None:
    """Put every file of the corpus into ``bucket`` under the same keys."""
    for path in sorted(corpus.root.rglob("*")):
        if path.is_file():
            client.put_object(
                Bucket=bucket, Key=path.relative_to(corpus.root).as_posix(), Body=path.read_bytes()
            )


def problem_places(problems: list[dict[str, Any]]) -> Counter[tuple[str, int | None]]:
    """(object file name, record position) of each reported problem, wherever it was stored."""
    return Counter((p["key"].rsplit("/", 1)[-1], p.get("record")) for p in problems)


def expected_places(corpus: HostileCorpus) -> Counter[tuple[str, int | None]]:
    places = Counter((corpus.objects[e.name].name, e.record) for e in corpus.problems)
    places.update((key.rsplit("/", 1)[-1], None) for key in corpus.unrecognised)
    return places
