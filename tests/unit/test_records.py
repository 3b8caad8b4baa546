"""Records -> rows: payload text byte-exact, unknown fields kept, drifting types survived."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from tests.helpers import assert_row_preserves
from transforms.records import RecordRows, read_document, read_records, rows_to_frame

BASE = (
    b'"eventVersion":"1.08","eventTime":"2024-01-05T23:59:58Z","eventSource":"s3.amazonaws.com",'
    b'"eventName":"GetObject","awsRegion":"us-east-1","eventID":"e1","readOnly":true'
)


def rows_of(*records: bytes) -> tuple[list[dict[str, Any]], RecordRows]:
    decoded = RecordRows()
    read_records([msgspec.Raw(r) for r in records], "k", decoded)
    return rows_to_frame(decoded).to_dicts(), decoded


def one_row(record: bytes) -> dict[str, Any]:
    rows, decoded = rows_of(record)
    assert decoded.problems == []
    assert_row_preserves(json.loads(record), rows[0])
    return rows[0]


# Each payload is JSON text as CloudTrail could write it; the column must hold it byte for byte.
EXACT_PAYLOADS = [
    rb'{"bucketName":"b","key":"\u00e9"}',  # a unicode escape stays an escape
    '{"bucketName":"b","key":"é日本"}'.encode(),  # raw UTF-8 stays raw
    rb'{"path":"C:\\Windows\\System32","re":"a\\d+"}',  # backslashes, escaped once
    rb'{"s":"line1\nline2\ttab\u0001\"quoted\""}',  # control characters and quotes
    rb'{"emoji":"\ud83d\ude00","slash":"a\/b"}',  # surrogate pairs, escaped slash
    rb'{"f":1.0,"g":0.5,"h":1e-07,"i":-0.0,"j":12345678901234567890}',  # number forms
    rb'{"nested":[[1,2],[3,[4]]],"empty":{},"none":[],"n":null}',
    rb'{"MaxResults":5,"maxResults":"10","Filter":[],"filter":{}}',  # case twins stay apart
    rb'{"z":1,"a":2,"m":{"y":1,"b":2}}',  # key order as written
    rb'[1,"two",{"three":3}]',  # not an object at all
]


# What sends a record down each decoding path: nothing (typed), a field the schema does not
# know (lenient), a known field holding a value of an unexpected type (careful).
PATHS = {"typed": b"", "lenient": b',"brandNewField":1', "careful": b',"eventType":7'}


@pytest.mark.parametrize("payload", EXACT_PAYLOADS)
@pytest.mark.parametrize("path", PATHS)
def test_payload_text_is_kept_byte_for_byte(payload, path):
    record = b"{" + BASE + b',"requestParameters":' + payload + PATHS[path] + b"}"
    row = one_row(record)
    assert row["requestparameters"].encode() == payload
    assert (row["unmapped"] is None) == (path != "lenient")


UNKNOWN_FIELD_RECORDS = [
    b"{" + BASE + b',"newTop":[1,{"a":2}]}',
    b"{" + BASE + b',"userIdentity":{"type":"IAMUser","newIdentityField":"x"}}',
    b"{" + BASE + b',"userIdentity":{"sessionContext":{"attributes":{"future":1.50}},"arn":"a"}}',
    b"{" + BASE + b',"userIdentity":null,"tlsDetails":{"tlsVersion":"TLSv1.3","quic":true}}',
    b"{" + BASE + b',"resources":[{"ARN":"a"},null,{"type":"t","partition":"aws"}]}',
    b"{" + BASE + b',"resources":[{"ARN":"a","Extra":{}}],"zzz":null,"Readonly":"x"}',
]


@pytest.mark.parametrize("record", UNKNOWN_FIELD_RECORDS)
def test_the_lenient_path_maps_and_keeps_what_the_careful_path_does(record):
    from msgspec.structs import asdict

    from schemas.cloudtrail import EVENTS
    from transforms.records import _decode_carefully, _decode_with_unknown_fields, _decoders

    def plain(value: Any) -> Any:
        if isinstance(value, msgspec.Struct):
            return {k: plain(v) for k, v in asdict(value).items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return bytes(value) if isinstance(value, msgspec.Raw) else value

    span = msgspec.Raw(record)
    lenient_row, lenient_rest = _decode_with_unknown_fields(span, EVENTS, _decoders(EVENTS))
    careful_row, careful_rest = _decode_carefully(span, EVENTS)
    assert plain(lenient_row) == plain(careful_row)
    assert lenient_rest == careful_rest
    assert lenient_rest is not None


def test_rows_become_the_same_frame_however_they_are_chunked(monkeypatch):
    from transforms import records

    spans = [msgspec.Raw(r) for r in UNKNOWN_FIELD_RECORDS] * 3
    whole = RecordRows()
    read_records(spans, "k", whole)
    monkeypatch.setattr(records, "CHUNK_ROWS", 4)
    chunked = RecordRows()
    for start in range(0, len(spans), 3):  # several objects, chunks straddling them
        read_records(spans[start : start + 3], f"k{start}", chunked)
    assert len(chunked.chunks) > 1
    assert len(chunked) == len(whole) == len(spans)
    assert rows_to_frame(chunked).equals(rows_to_frame(whole))


def test_typed_document_path_keeps_payload_bytes():
    payload = rb'{"p":"C:\\Windows","x":1.0,"u":"\u00e9"}'
    document = b'{"Records":[{' + BASE + b',"responseElements":' + payload + b"}]}"
    decoded = RecordRows()
    assert read_document(document, "k", decoded)
    row = rows_to_frame(decoded).to_dicts()[0]
    assert row["responseelements"].encode() == payload
    assert row["readonly"] == "true"


def test_like_on_payload_text_behaves_as_on_the_raw_table():
    row = one_row(b"{" + BASE + b',"requestParameters":{"bucketName":"b","key":"x"}}')
    assert '"bucketName":"b"' in row["requestparameters"]


def test_null_and_missing_payloads_are_null():
    row = one_row(b"{" + BASE + b',"requestParameters":null}')
    assert row["requestparameters"] is None
    assert row["responseelements"] is None


def test_a_payload_given_as_a_json_string_shows_the_string():
    row = one_row(b"{" + BASE + rb',"requestParameters":"{\"a\":1}"}')
    assert row["requestparameters"] == '{"a":1}'


def test_unknown_fields_are_kept_in_unmapped_mirroring_the_nesting():
    record = (
        b"{" + BASE + b',"newTopLevel":{"x":[1,2.50]},"userIdentity":{"type":"IAMUser",'
        b'"newIdentityField":"abc","sessionContext":{"attributes":{"mfaAuthenticated":"true",'
        b'"futureAttr":1.0}}}}'
    )
    row = one_row(record)
    assert row["unmapped"] == (
        '{"newTopLevel":{"x":[1,2.50]},"userIdentity":{"newIdentityField":"abc",'
        '"sessionContext":{"attributes":{"futureAttr":1.0}}}}'
    )
    assert row["useridentity"]["type"] == "IAMUser"
    assert row["useridentity"]["sessioncontext"]["attributes"]["mfaauthenticated"] == "true"


def test_keys_differing_only_by_case_are_not_merged():
    row = one_row(b"{" + BASE + b',"userIdentity":{"type":"IAMUser","Type":"other"}}')
    assert row["useridentity"]["type"] == "IAMUser"
    assert json.loads(row["unmapped"]) == {"userIdentity": {"Type": "other"}}


@pytest.mark.parametrize(
    ("fragment", "column", "shown"),
    [
        (b'"readOnly":"True"', "readonly", "True"),  # a string where a boolean was
        (b'"readOnly":false', "readonly", "false"),
        (b'"managementEvent":true', "managementevent", "true"),
        (b'"eventVersion":1.1', "eventversion", "1.1"),  # a number where a string was
        (b'"errorMessage":{"detail":"x"}', "errormessage", '{"detail":"x"}'),
    ],
)
def test_scalar_types_that_drift_show_their_json_text(fragment, column, shown):
    record = b'{"eventTime":"2024-01-05T00:00:00Z","eventID":"e",' + fragment + b"}"
    assert one_row(record)[column] == shown


@pytest.mark.parametrize(
    "identity",
    [b'"userIdentity":"arn:aws:iam::1:root"', b'"userIdentity":[1]', b'"userIdentity":7'],
)
def test_a_struct_of_the_wrong_shape_goes_whole_to_unmapped(identity):
    row = one_row(b"{" + BASE + b"," + identity + b"}")
    assert row["useridentity"] is None
    _, value = identity.split(b":", 1)
    assert json.loads(row["unmapped"]) == {"userIdentity": json.loads(value)}


def test_resources_keep_their_shape_and_odd_elements_keep_the_array():
    row = one_row(
        b"{" + BASE + b',"resources":[{"ARN":"arn:aws:s3:::b","type":"AWS::S3::Bucket"},'
        b'{"accountId":"1","type":"AWS::S3::Object","partition":"aws"}]}'
    )
    assert row["resources"] == [
        {"arn": "arn:aws:s3:::b", "accountid": None, "type": "AWS::S3::Bucket"},
        {"arn": None, "accountid": "1", "type": "AWS::S3::Object"},
    ]
    assert json.loads(row["unmapped"])["resources"][1]["partition"] == "aws"


def test_empty_objects_stay_distinct_from_missing_ones():
    row = one_row(b"{" + BASE + b',"userIdentity":{"sessionContext":{"sessionIssuer":{}}}}')
    issuer = row["useridentity"]["sessioncontext"]["sessionissuer"]
    assert issuer == {k: None for k in issuer}
    assert row["useridentity"]["sessioncontext"]["attributes"] is None


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (b"[1,2]", "record is not a JSON object"),
        (b'"text"', "record is not a JSON object"),
        (b"null", "record is not a JSON object"),
        (b'{"eventID":"\xff"}', "not valid UTF-8"),
    ],
)
def test_records_that_cannot_be_read_are_reported_and_the_rest_kept(record, reason):
    good = b"{" + BASE + b"}"
    rows, decoded = rows_of(good, record, good)
    assert len(rows) == 2
    assert [(p.key, p.record) for p in decoded.problems] == [("k", 1)]
    assert reason in decoded.problems[0].reason
    assert decoded.positions == [0, 2]


def test_a_boolean_column_mixing_json_types_shows_each_as_the_raw_table_does():
    def record(value: bytes) -> bytes:
        return b'{"eventTime":"2024-01-05T00:00:00Z","eventID":"e","readOnly":' + value + b"}"

    values = [b"true", b'"True"', b"false", b"0", b"null", b'{"a":1}']
    rows, decoded = rows_of(*(record(v) for v in values))
    assert decoded.problems == []
    assert [r["readonly"] for r in rows] == ["true", "True", "false", "0", None, '{"a":1}']
    only_booleans, _ = rows_of(record(b"false"), record(b"null"), record(b"true"))
    assert [r["readonly"] for r in only_booleans] == ["false", None, "true"]
