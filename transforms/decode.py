"""Bytes of a log object -> the raw JSON spans of its records.

CloudTrail objects are gzip JSON ``{"Records": [...]}``. Plain JSON is accepted
when the bytes are not gzip. A truncated or corrupt object still yields every
record that is complete before the damage, with a problem that says what broke.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass

import msgspec

try:  # ISA-L inflates ~1.8x faster than zlib; same format, optional.
    from isal import igzip as _gzip
except ImportError:  # pragma: no cover - isal is a declared dependency
    import gzip as _gzip  # type: ignore[no-redef]

_GZIP_MAGIC = b"\x1f\x8b"


class _Envelope(msgspec.Struct, gc=False):
    Records: list[msgspec.Raw]


@dataclass
class DecodedObject:
    """The record spans read from one object, and what broke in it, if anything."""

    records: list[msgspec.Raw]
    problem: str | None = None


def is_gzip(data: bytes) -> bool:
    return data[:2] == _GZIP_MAGIC


def decompress(data: bytes) -> tuple[bytes, str | None]:
    """Inflate gzip (all members); plain bytes pass through. Returns (bytes, problem)."""
    if not is_gzip(data):
        return data, None
    try:
        inflated: bytes = _gzip.decompress(data)  # type: ignore[no-untyped-call,unused-ignore]
        return inflated, None
    except (OSError, EOFError, zlib.error, ValueError) as error:
        return _inflate_prefix(data), f"gzip stream is damaged ({error}); read what came before"


def _inflate_prefix(data: bytes) -> bytes:
    """Whatever a damaged gzip stream yields before the damage."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        return inflater.decompress(data)
    except zlib.error:
        return b""


def split_records(document: bytes) -> DecodedObject:
    """The ``Records`` of a JSON document as raw spans, salvaging complete ones if broken."""
    try:
        return DecodedObject(msgspec.json.decode(document, type=_Envelope).Records)
    except msgspec.ValidationError as error:
        return DecodedObject([], _envelope_problem(document, str(error)))
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        salvaged = _salvage_records(document)
        reason = "empty object" if not document.strip() else f"not valid JSON ({error})"
        if salvaged:
            reason += f"; kept the {len(salvaged)} complete records before the damage"
        return DecodedObject(salvaged, reason)


def _envelope_problem(document: bytes, detail: str) -> str:
    try:
        top = msgspec.json.decode(document)
    except msgspec.DecodeError:  # pragma: no cover - ValidationError implies valid JSON
        return detail
    if not isinstance(top, dict):
        return f"top level is a JSON {type(top).__name__}, not an object with Records"
    if "Records" not in top:
        return "no Records key"
    return f"Records is a JSON {type(top['Records']).__name__}, not a list"


_RECORDS_START = re.compile(r'\s*\{\s*"Records"\s*:\s*\[')


def _salvage_records(document: bytes) -> list[msgspec.Raw]:
    """Complete record spans of a truncated or partly corrupt document, in order."""
    text = document.decode("utf-8", "surrogateescape")
    start = _RECORDS_START.match(text)
    if start is None:
        return []
    decoder = json.JSONDecoder()
    position = start.end()
    spans: list[msgspec.Raw] = []
    while True:
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        try:
            _, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            return spans
        spans.append(msgspec.Raw(text[position:end].encode("utf-8", "surrogateescape")))
        position = end
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        if position >= len(text) or text[position] != ",":
            return spans
        position += 1
