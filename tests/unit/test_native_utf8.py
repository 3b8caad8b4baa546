"""The native UTF-8 check says what Python's codec says, on every form that matters."""

from __future__ import annotations

import itertools
from random import Random

import msgspec

from tests.conftest import require
from transforms import native


def _python_says(data: bytes) -> bool:
    try:
        str(data, "utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _require_native() -> None:
    require(native.native_built(), "the native scanner is not built (no C compiler at install?)")


def test_every_one_and_two_byte_sequence():
    _require_native()
    for pair in itertools.product(range(256), repeat=2):
        data = bytes(pair)
        assert native.is_utf8(data) == _python_says(data), data
        assert native.is_utf8(data[:1]) == _python_says(data[:1]), data


def test_three_and_four_byte_sequences_at_their_boundaries():
    _require_native()
    edges = [0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xE0, 0xED, 0xF4, 0xFF]
    for lead in range(0xC0, 0x100):
        for rest in itertools.product(edges, repeat=3):
            for length in (2, 3, 4):
                data = bytes([lead, *rest[: length - 1]])
                assert native.is_utf8(data) == _python_says(data), data


def test_random_text_with_damage_anywhere_in_long_ascii_runs():
    _require_native()
    rng = Random(3)
    alphabet = "aé€😀\u2028\x7f\x00"
    for _ in range(3_000):
        text = "".join(rng.choice(alphabet) * rng.randint(1, 40) for _ in range(rng.randint(0, 8)))
        data = bytearray(text.encode())
        for _ in range(rng.randint(0, 2)):  # a byte changed or cut, past the 16-byte runs too
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        if data and rng.random() < 0.3:
            del data[rng.randrange(len(data)) :]
        assert native.is_utf8(bytes(data)) == _python_says(bytes(data)), bytes(data)
        assert native.is_utf8(msgspec.Raw(bytes(data))) == _python_says(bytes(data))


def test_documents_checked_without_the_gil_get_the_same_answers():
    # From 64 KiB the check lets the GIL go: the same walk, on a document-sized input.
    _require_native()
    rng = Random(5)
    body = ("{" + '"userAgent":"aws-cli é€",' * 4_000 + "}").encode()
    assert len(body) > 64 << 10
    for _ in range(200):
        data = bytearray(body)
        data[rng.randrange(len(data))] = rng.randrange(256)
        assert native.is_utf8(bytes(data)) == _python_says(bytes(data))
    assert native.is_utf8(body) is True
    assert native.is_utf8(body[:-2] + b"\xc3") is False  # cut inside a character, at the end
