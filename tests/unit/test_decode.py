"""Object bytes -> record spans: gzip or plain, and what happens to broken objects."""

from __future__ import annotations

import gzip

import pytest

from transforms.decode import decompress, split_records

GOOD = b'{"Records":[{"eventID":"a"},{"eventID":"b"},{"eventID":"c"}]}'


def spans(document: bytes) -> list[bytes]:
    return [bytes(raw) for raw in split_records(document).records]


def test_gzip_and_plain_json_decode_alike():
    assert decompress(gzip.compress(GOOD)) == (GOOD, None)
    assert decompress(GOOD) == (GOOD, None)
    assert spans(GOOD) == [b'{"eventID":"a"}', b'{"eventID":"b"}', b'{"eventID":"c"}']


def test_multi_member_gzip_reads_every_member():
    half = len(GOOD) // 2
    data = gzip.compress(GOOD[:half]) + gzip.compress(GOOD[half:])
    assert decompress(data) == (GOOD, None)


def test_members_of_every_size_are_read_whatever_the_last_one_says_of_its_size():
    # The last member's stated size sizes the first buffer; it never bounds what is read.
    big = b'{"Records":[' + b",".join(b'{"eventID":"%d"}' % i for i in range(20_000)) + b"]}"
    cut = len(big) // 3
    for data, whole in (
        (gzip.compress(big), big),
        (gzip.compress(big[:cut]) + gzip.compress(big[cut:]), big),  # first member larger
        (gzip.compress(b"") + gzip.compress(GOOD), GOOD),  # an empty member first
        (gzip.compress(big[:-cut]) + gzip.compress(big[-cut:]), big),
    ):
        assert decompress(data) == (whole, None)
    stated_wrong = bytearray(gzip.compress(big))
    stated_wrong[-4:] = (7).to_bytes(4, "little")  # a size that is not the content's
    document, problem = decompress(bytes(stated_wrong))
    assert problem is not None and "gzip stream is damaged" in problem  # never read short quietly
    assert big.startswith(document)


def test_truncated_gzip_keeps_the_complete_records_before_the_damage():
    compressed = gzip.compress(GOOD * 1)
    document, problem = decompress(compressed[: len(compressed) - 12])
    assert problem is not None and "gzip stream is damaged" in problem
    decoded = split_records(document)
    assert [bytes(r) for r in decoded.records] == [b'{"eventID":"a"}', b'{"eventID":"b"}'][
        : len(decoded.records)
    ]
    assert decoded.problem is not None


def test_truncated_json_salvages_complete_records():
    cut = GOOD.index(b'{"eventID":"c"') + 5
    decoded = split_records(GOOD[:cut])
    assert [bytes(r) for r in decoded.records] == [b'{"eventID":"a"}', b'{"eventID":"b"}']
    assert decoded.problem is not None
    assert "not valid JSON" in decoded.problem and "kept the 2 complete records" in decoded.problem


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"", "empty object"),
        (b"   ", "empty object"),
        (b"not json at all", "not valid JSON"),
        (b'{"digestStartTime":"2024-01-05T00:00:00Z"}', "no Records key"),
        (b'{"Records":{"eventID":"a"}}', "Records is a JSON object, not an array"),
        (b'[{"eventID":"a"}]', "top level is a JSON array"),
    ],
)
def test_broken_objects_say_why(document, reason):
    decoded = split_records(document)
    assert decoded.problem is not None and reason in decoded.problem


def test_bytes_inside_a_record_are_judged_with_the_record():
    # Invalid UTF-8 in one record must not cost the others: the split does not look inside.
    assert spans(b'{"Records":[{"eventID":"\xff"},{"eventID":"b"}]}') == [
        b'{"eventID":"\xff"}',
        b'{"eventID":"b"}',
    ]


def test_records_that_are_not_objects_still_split():
    # Each span is judged later, one by one: one bad record does not sink its neighbours.
    assert spans(b'{"Records":[1,"x",{"eventID":"a"},null]}') == [
        b"1",
        b'"x"',
        b'{"eventID":"a"}',
        b"null",
    ]
