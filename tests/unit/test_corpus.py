"""The corpus generator: deterministic, laid out like CloudTrail, covering its edge cases."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.corpus import PAYLOAD_KEYS, Corpus, generate_corpus

ORG = "o-a1b2c3d4e5"
EVENT_KEY = re.compile(
    r"^AWSLogs/(?:(?P<org>o-[a-z0-9]{10,32})/)?(?P<account>\d{12})/CloudTrail/(?P<region>[a-z0-9-]+)/"
    r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/"
    r"(?P=account)_CloudTrail_(?P=region)_(?P=y)(?P=m)(?P=d)T\d{4}Z_[A-Za-z0-9]{16}\.json\.gz$"
)
DIGEST_KEY = re.compile(
    r"^AWSLogs/(?:o-[a-z0-9]{10,32}/)?(?P<account>\d{12})/CloudTrail-Digest/(?P<region>[a-z0-9-]+)/"
    r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P=account)_CloudTrail-Digest_(?P=region)_"
    r"[A-Za-z0-9-]+_(?P=region)_(?P=y)(?P=m)(?P=d)T\d{6}Z\.json\.gz$"
)
INSIGHT_KEY = re.compile(
    r"^AWSLogs/(?P<account>\d{12})/CloudTrail-Insight/(?P<region>[a-z0-9-]+)/"
    r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P=account)_CloudTrail-Insight_(?P=region)_"
    r"(?P=y)(?P=m)(?P=d)T\d{4}Z_[A-Za-z0-9]{16}\.json\.gz$"
)

# The fields CloudTrail documents (through eventVersion 1.11): anything else is "unknown".
KNOWN_TOP = {
    "eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion",
    "sourceIPAddress", "userAgent", "errorCode", "errorMessage", "requestParameters",
    "responseElements", "additionalEventData", "requestID", "eventID", "resources", "eventType",
    "apiVersion", "readOnly", "recipientAccountId", "serviceEventDetails", "sharedEventID",
    "vpcEndpointId", "vpcEndpointAccountId", "managementEvent", "eventCategory", "tlsDetails",
    "sessionCredentialFromConsole", "edgeDeviceDetails", "addendum", "insightDetails",
}  # fmt: skip
KNOWN_IDENTITY = {
    "type", "principalId", "arn", "accountId", "invokedBy", "accessKeyId", "userName",
    "sessionContext", "identityProvider", "credentialId", "onBehalfOf", "inScopeOf",
}  # fmt: skip


@dataclass
class Delivered:
    """One record as found in an event object."""

    key: str
    region: str
    folder_date: date
    text: bytes


def record_spans(document: bytes) -> list[bytes]:
    """The exact bytes of each element of a ``{"Records":[...]}`` document."""
    text = document.decode("utf-8")
    assert text.startswith('{"Records":[') and text.endswith("]}"), text[:40]
    decoder = json.JSONDecoder()
    spans: list[bytes] = []
    position = len('{"Records":[')
    while text[position] != "]":
        _, end = decoder.raw_decode(text, position)
        spans.append(text[position:end].encode("utf-8"))
        position = end + (text[end] == ",")
    assert position == len(text) - 2
    return spans


def read_deliveries(corpus: Corpus) -> list[Delivered]:
    found: list[Delivered] = []
    for key in corpus.event_objects:
        match = EVENT_KEY.match(key)
        assert match, key
        folder = date(int(match["y"]), int(match["m"]), int(match["d"]))
        document = gzip.decompress((corpus.root / key).read_bytes())
        found.extend(
            Delivered(key, match["region"], folder, span) for span in record_spans(document)
        )
    return found


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return generate_corpus(tmp_path_factory.mktemp("corpus"), seed=7, events=2000)


@pytest.fixture(scope="module")
def deliveries(corpus: Corpus) -> list[Delivered]:
    return read_deliveries(corpus)


@pytest.fixture(scope="module")
def all_bytes(corpus: Corpus) -> bytes:
    return b"\n".join(gzip.decompress((corpus.root / k).read_bytes()) for k in corpus.event_objects)


@pytest.fixture(scope="module")
def records(corpus: Corpus) -> list[dict[str, Any]]:
    return [event.record for event in corpus.events.values()]


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# --- Determinism and layout ------------------------------------------------------------


def test_same_seed_writes_identical_bytes_and_another_seed_does_not(tmp_path):
    first = generate_corpus(tmp_path / "a", seed=3, events=600)
    second = generate_corpus(tmp_path / "b", seed=3, events=600)
    other = generate_corpus(tmp_path / "c", seed=4, events=600)
    assert files_under(first.root) == files_under(second.root)
    assert first.events == second.events
    assert first.duplicate_event_ids == second.duplicate_event_ids
    assert first.late_event_ids == second.late_event_ids
    assert files_under(first.root) != files_under(other.root)
    assert set(first.events).isdisjoint(other.events)


def test_every_file_is_listed_once(corpus):
    listed = corpus.event_objects + corpus.digest_objects + corpus.insight_objects
    assert len(listed) == len(set(listed))
    assert set(files_under(corpus.root)) == set(listed)
    assert corpus.event_objects and corpus.digest_objects and corpus.insight_objects


def test_event_objects_follow_the_layout_with_and_without_an_org_prefix(corpus):
    orgs: Counter[str | None] = Counter()
    accounts_by_layout: dict[str | None, set[str]] = defaultdict(set)
    for key in corpus.event_objects:
        match = EVENT_KEY.match(key)
        assert match, key
        orgs[match["org"]] += 1
        accounts_by_layout[match["org"]].add(match["account"])
    assert set(orgs) == {ORG, None}
    assert accounts_by_layout[ORG].isdisjoint(accounts_by_layout[None])


def test_without_an_org_every_key_is_plain(tmp_path):
    corpus = generate_corpus(tmp_path, seed=1, events=50, org_id=None, accounts=3)
    assert all(k.startswith("AWSLogs/") and "/o-" not in k for k in corpus.event_objects)


def test_event_objects_are_compact_gzip_json_of_records(corpus, deliveries):
    for key in corpus.event_objects:
        data = (corpus.root / key).read_bytes()
        assert data[:2] == b"\x1f\x8b"
        document = gzip.decompress(data)
        assert list(json.loads(document)) == ["Records"]
        assert document.startswith(b'{"Records":[{"eventVersion":')
        assert b'": ' not in document[:200]  # compact, like CloudTrail
    assert (
        len(deliveries)
        == corpus.total_records
        == len(corpus.events) + len(corpus.duplicate_event_ids)
    )


def test_every_expected_record_is_written_byte_for_byte(corpus, deliveries):
    by_id: dict[str, list[Delivered]] = defaultdict(list)
    for delivered in deliveries:
        record = json.loads(delivered.text)
        assert delivered.region == record["awsRegion"]
        by_id[record["eventID"]].append(delivered)
    assert set(by_id) == set(corpus.events)
    for event_id, event in corpus.events.items():
        copies = by_id[event_id]
        assert all(copy.text == event.record_text for copy in copies)
        assert event.record == json.loads(event.record_text)
        assert event.event_id == event.record["eventID"] == event_id


def test_partition_comes_from_event_time_and_region(corpus):
    for event in corpus.events.values():
        when = datetime.strptime(event.record["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
        region = event.record["awsRegion"]
        assert event.partition == (
            f"region={region}/year={when.year:04d}/month={when.month:02d}/day={when.day:02d}"
        )


def test_late_events_sit_in_the_next_days_folder(corpus, deliveries):
    assert len(corpus.late_event_ids) == 40
    for delivered in deliveries:
        record = json.loads(delivered.text)
        when = datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
        if record["eventID"] in corpus.late_event_ids:
            assert delivered.folder_date == when.date() + timedelta(days=1)
            assert (when.hour, when.minute // 10) == (23, 5)
        else:
            assert delivered.folder_date == when.date()
    assert corpus.late_event_ids <= set(corpus.events)


def test_duplicates_are_delivered_in_two_different_objects(corpus, deliveries):
    assert len(corpus.duplicate_event_ids) == 20
    keys: dict[str, list[str]] = defaultdict(list)
    for delivered in deliveries:
        keys[json.loads(delivered.text)["eventID"]].append(delivered.key)
    for event_id, where in keys.items():
        expected = 2 if event_id in corpus.duplicate_event_ids else 1
        assert len(where) == len(set(where)) == expected, event_id


def test_unknown_fields_are_marked(corpus):
    assert len(corpus.unknown_field_event_ids) == 40
    top = identity = 0
    for event_id, event in corpus.events.items():
        extra_top = set(event.record) - KNOWN_TOP
        extra_identity = set(event.record["userIdentity"]) - KNOWN_IDENTITY
        assert bool(extra_top or extra_identity) == (event_id in corpus.unknown_field_event_ids)
        top += bool(extra_top)
        identity += bool(extra_identity)
    assert top and identity


def test_digests_have_no_records_and_list_real_log_files(corpus):
    events = set(corpus.event_objects)
    listed = set()
    for key in corpus.digest_objects:
        assert DIGEST_KEY.match(key), key
        digest = json.loads(gzip.decompress((corpus.root / key).read_bytes()))
        assert "Records" not in digest
        assert digest["awsAccountId"] in key
        assert digest["digestS3Object"] == key
        assert digest["digestStartTime"] < digest["digestEndTime"]
        assert digest["digestS3Bucket"]
        for log in digest["logFiles"]:
            assert log["s3Object"] in events
            body = gzip.decompress((corpus.root / log["s3Object"]).read_bytes())
            assert log["hashValue"] == hashlib.sha256(body).hexdigest()
            listed.add(log["s3Object"])
    assert listed == events


def test_insight_objects_hold_only_insight_events(corpus):
    states = set()
    for key in corpus.insight_objects:
        assert INSIGHT_KEY.match(key), key
        records = json.loads(gzip.decompress((corpus.root / key).read_bytes()))["Records"]
        assert records
        for record in records:
            assert record["eventType"] == "AwsCloudTrailInsight"
            assert record["eventCategory"] == "Insight"
            assert record["eventID"] not in corpus.events
            details = record["insightDetails"]
            assert details["insightType"] == "ApiCallRateInsight"
            assert {"eventSource", "eventName"} <= set(details)
            assert "statistics" in details["insightContext"]
            states.add(details["state"])
    assert states == {"Start", "End"}


def test_a_tiny_corpus_still_works(tmp_path):
    corpus = generate_corpus(
        tmp_path, seed=0, events=3, days=1, accounts=1, regions=("ap-south-2",)
    )
    assert len(corpus.events) == 3
    assert corpus.total_records == 3 + len(corpus.duplicate_event_ids)


# --- Payload texts ---------------------------------------------------------------------


def test_payload_text_is_the_value_as_written(corpus):
    for event in corpus.events.values():
        text = event.record_text.decode()
        assert set(event.payload_text) == set(PAYLOAD_KEYS)
        for key, payload in event.payload_text.items():
            value = event.record.get(key)
            if value is None:
                assert payload is None
            elif isinstance(value, str):
                assert payload == value
            else:
                assert payload is not None
                assert f'"{key}":{payload}' in text
                assert json.loads(payload) == value


def test_payload_text_keeps_escapes_and_number_forms(corpus):
    texts = [t for e in corpus.events.values() for t in e.payload_text.values() if t]
    for needle in (
        r'"C:\\Windows\\System32',
        r"\u00e9",
        r"\ud83d\ude00",
        "café",
        r"\n",
        r"\u0001",
        r"https:\/\/",
        "1e-07",
        "-0.0",
        ":1.0,",
        "18446744073709551616",
    ):
        assert any(needle in t for t in texts), needle
    string_payloads = [
        e.payload_text["requestParameters"]
        for e in corpus.events.values()
        if isinstance(e.record["requestParameters"], str)
    ]
    assert '{"bucketName":"legacy-bucket","acl":""}' in string_payloads


# --- Edge cases that must occur ------------------------------------------------------------


@pytest.mark.parametrize(
    "needle",
    [
        b"\\u00e9",
        "é".encode(),
        "日本".encode(),
        b"\\ud83d\\ude00",
        b"C:\\\\Windows",
        b"\\/",
        b"\\n",
        b"\\t",
        b"\\u0001",
        b":1.0,",
        b":0.5,",
        b"1e-07",
        b"-0.0",
        b"9223372036854775807",
        b"[[1,2],[3,[4]]]",
        b":{}",
        b":[]",
        b'"requestParameters":null',
        b'"responseElements":null',
        b'"bytesTransferredIn":0.0,',
        b'"bytesTransferredIn":0,',
        b'"sessionCredentialFromConsole":"true"',
        b'"ec2RoleDelivery":"2.0"',
        b'"assumedRoot":"true"',
        b'"webIdFederationData":{}',
        b'"webIdFederationData":{"federatedProvider":',
        b'"mfaAuthenticated":"true"',
        b'"mfaAuthenticated":"false"',
        b'"principalId":"","accountId":"ANONYMOUS_PRINCIPAL"}',
    ],
)
def test_bytes_occur(all_bytes, needle):
    assert needle in all_bytes


def test_case_twins_and_changing_types(records):
    twins = [
        r["requestParameters"]
        for r in records
        if isinstance(r["requestParameters"], dict)
        and {"MaxResults", "maxResults"} <= set(r["requestParameters"])
    ]
    assert twins
    max_results = {
        type(r["requestParameters"]["maxResults"])
        for r in records
        if r["eventName"] == "DescribeInstances" and "maxResults" in (r["requestParameters"] or {})
    }
    assert max_results == {int, str}
    tags = {
        type(r["requestParameters"]["tags"])
        for r in records
        if isinstance(r["requestParameters"], dict) and "tags" in r["requestParameters"]
    }
    assert tags == {list, dict}


def test_large_payloads_occur(corpus):
    sizes = sorted(
        len(text.encode())
        for e in corpus.events.values()
        for text in e.payload_text.values()
        if text
    )
    assert sizes[-2] > 200_000


def test_every_identity_type_occurs(records):
    identities = [r["userIdentity"] for r in records]
    types = Counter(i.get("type") for i in identities)
    for kind in (
        "Root", "IAMUser", "AssumedRole", "FederatedUser", "AWSAccount", "AWSService",
        "IdentityCenterUser", "SAMLUser", "WebIdentityUser", "Unknown",
    ):  # fmt: skip
        assert types[kind], kind
    assert types[None], "a userIdentity with no type"
    assert any(i.get("accountId") == "ANONYMOUS_PRINCIPAL" and "arn" not in i for i in identities)
    assert any(
        i.get("type") == "AWSService" and set(i) == {"type", "invokedBy"} for i in identities
    )
    contexts = [i["sessionContext"] for i in identities if "sessionContext" in i]
    assert any("sourceIdentity" in c for c in contexts)
    assert any(c.get("webIdFederationData", {}).get("attributes") for c in contexts)
    assert any(
        {"type", "principalId", "arn", "accountId", "userName"} <= set(c.get("sessionIssuer", {}))
        for c in contexts
    )
    assert any(
        {"issuerType", "credentialsIssuedTo"} <= set(i.get("inScopeOf", {})) for i in identities
    )
    assert any(
        {"userId", "identityStoreArn"} <= set(i.get("onBehalfOf", {})) and "credentialId" in i
        for i in identities
    )
    assert any("identityProvider" in i for i in identities if i.get("type") == "WebIdentityUser")


def test_record_fields_vary_as_in_real_logs(records):
    def values(field: str) -> set[Any]:
        return {json.dumps(r[field]) for r in records if field in r}

    assert values("eventType") == {'"AwsApiCall"', '"AwsServiceEvent"', '"AwsConsoleSignIn"'}
    assert values("readOnly") == values("managementEvent") == {"true", "false"}
    assert values("eventCategory") == {'"Management"', '"Data"'}
    versions = {r["eventVersion"] for r in records}
    assert len(versions) > 3 and versions <= {f"1.{minor:02d}" for minor in range(5, 12)}
    assert all(
        re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", r["eventTime"]) for r in records
    )
    assert any(r["eventTime"][11:15] == "23:5" for r in records)
    sources = {r["sourceIPAddress"] for r in records}
    assert "AWS Internal" in sources
    assert any(s.endswith(".amazonaws.com") for s in sources)
    assert any(re.fullmatch(r"\d+\.\d+\.\d+\.\d+", s) for s in sources)
    assert any(r.get("errorCode") == "AccessDenied" and r.get("errorMessage") for r in records)
    for field in ("apiVersion", "sharedEventID", "requestID", "userAgent", "recipientAccountId"):
        assert any(field in r for r in records), field
    assert any("vpcEndpointId" in r and "vpcEndpointAccountId" in r for r in records)
    assert any(
        set(r.get("tlsDetails", {})) == {"tlsVersion", "cipherSuite", "clientProvidedHostHeader"}
        for r in records
    )
    assert any(
        set(r.get("addendum", {}))
        == {"reason", "updatedFields", "originalRequestID", "originalEventID"}
        for r in records
    )
    assert any(isinstance(r.get("edgeDeviceDetails"), dict) for r in records)
    assert any(
        r["eventType"] == "AwsServiceEvent" and isinstance(r.get("serviceEventDetails"), dict)
        for r in records
    )
    assert any(isinstance(r.get("additionalEventData"), dict) for r in records)
    assert all(r["awsRegion"] in ("us-east-1", "eu-west-1") for r in records)


def test_resources_are_sometimes_missing_or_partial(records):
    assert any("resources" not in r for r in records)
    resources = [res for r in records for res in r.get("resources", [])]
    assert any(res["type"] == "AWS::S3::Object" and "accountId" in res for res in resources)
    assert any("accountId" not in res for res in resources)
    assert all({"ARN", "type"} <= set(res) for res in resources)
