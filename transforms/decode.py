"""Bytes of a log object -> the raw JSON spans of its records.

CloudTrail objects are gzip JSON ``{"Records": [...]}``. Plain JSON is accepted
when the bytes are not gzip. A truncated or corrupt object still yields every
record that is complete before the damage, with a problem that says what broke;
a record that is itself broken costs only that record, never its neighbours.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import cast

import msgspec
from isal import igzip_lib  # ISA-L inflates ~1.8x faster than zlib; the same format

# isal's stub declares its error an instance; it is a class (igzip_lib.IsalError).
_INFLATE_ERRORS = (cast("type[Exception]", igzip_lib.IsalError), zlib.error, OSError, ValueError)

_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = b"\xef\xbb\xbf"


class _Envelope(msgspec.Struct, gc=False):
    Records: list[msgspec.Raw]


@dataclass
class DecodedObject:
    """The record spans read from one object, and what broke in it, if anything."""

    records: list[msgspec.Raw]
    problem: str | None = None
    """Why the object could not be read whole; ``records`` are those before the damage."""


def is_gzip(data: bytes) -> bool:
    return data[:2] == _GZIP_MAGIC


MAX_INFLATED_BYTES = 1 << 30
"""Most bytes one object may inflate to (1 GiB): far above any CloudTrail object, far below
what a decompression bomb would take, so one hostile object cannot exhaust a worker."""
_CHUNK = 64 << 20


def decompress(data: bytes, max_bytes: int = MAX_INFLATED_BYTES) -> tuple[bytes, str | None]:
    """Inflate gzip (every member); plain bytes pass through. Returns (bytes, problem).

    A damaged or truncated stream yields what inflated before the damage, with a
    problem; one that would inflate beyond ``max_bytes`` yields nothing.
    """
    if not is_gzip(data):
        return data, None
    parts: list[bytes] = []
    inflated = 0
    rest = data
    try:
        while True:
            inflater = igzip_lib.IgzipDecompressor(flag=igzip_lib.DECOMP_GZIP)
            # A gzip stream ends with its last member's inflated size: for one member (every
            # CloudTrail object) the output is then made in one buffer of the right size,
            # not grown and copied (14% of inflating; the copy held the GIL).
            room = max_bytes - inflated + 1
            chunk = inflater.decompress(rest, min(_trailer_size(rest) + 1, room))
            while True:
                inflated += len(chunk)
                if inflated > max_bytes:
                    return b"", (
                        f"inflates to more than {max_bytes:,} bytes (a decompression bomb?); "
                        "not read"
                    )
                parts.append(chunk)
                if inflater.eof or inflater.needs_input or not chunk:
                    break
                chunk = inflater.decompress(b"", min(_CHUNK, max_bytes - inflated + 1))
            if not inflater.eof:
                return _joined(parts), _ENDS_EARLY
            rest = inflater.unused_data
            if not rest.strip(b"\0"):  # the end, or the zero padding some tools add
                return _joined(parts), None
            if not is_gzip(rest):
                return _joined(parts), _BYTES_AFTER
    except _INFLATE_ERRORS as error:
        return _joined(parts), f"gzip stream is damaged ({error}); read what came before"


def _trailer_size(stream: bytes) -> int:
    """The inflated size a gzip stream's last 4 bytes state (modulo 2**32; a hint only)."""
    return int.from_bytes(stream[-4:], "little") if len(stream) >= 4 else 0


_ENDS_EARLY = "gzip stream is damaged (it ends early); read what came before"
_BYTES_AFTER = "gzip stream is damaged (bytes after its end); read what came before"


def _joined(parts: list[bytes]) -> bytes:
    whole = [part for part in parts if part]
    return whole[0] if len(whole) == 1 else b"".join(whole)


def split_records(document: bytes) -> DecodedObject:
    """The ``Records`` of a JSON document as raw spans, salvaging complete ones if broken."""
    if document.startswith(_UTF8_BOM):  # Some tools that re-upload logs add one.
        document = document[len(_UTF8_BOM) :]
    try:
        return DecodedObject(msgspec.json.decode(document, type=_Envelope).Records)
    except msgspec.ValidationError as error:
        return DecodedObject([], _envelope_problem(document, str(error)))
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as error:
        salvaged, complete = _salvage_records(document)
        if complete:  # The envelope is whole: the damage is inside records, judged one by one.
            return DecodedObject(salvaged)
        reason = "empty object" if not document.strip() else f"not valid JSON ({_said(error)})"
        if salvaged:
            reason += f"; kept the {len(salvaged)} complete records before the damage"
        return DecodedObject(salvaged, reason)


def _said(error: Exception) -> str:
    return "nested too deeply" if isinstance(error, RecursionError) else str(error)


_JSON_NAMES = {dict: "object", list: "array", str: "string", int: "number", float: "number"}


def _json_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _envelope_problem(document: bytes, detail: str) -> str:
    try:
        top = msgspec.json.decode(document)
    except (msgspec.DecodeError, RecursionError):  # pragma: no cover - validated already
        return detail
    if not isinstance(top, dict):
        return f"top level is a JSON {_json_name(top)}, not an object with Records"
    if "Records" not in top:
        return "no Records key"
    return f"Records is a JSON {_json_name(top['Records'])}, not an array"


# --- Salvage: find record boundaries without trusting the whole document ---------------
#
# A scanner, not a parser: it matches brackets outside strings to find where each
# element of the Records array ends. It never recurses (a hostile nesting depth costs
# nothing) and accepts any bytes (each record is validated later, on its own).

_RECORDS_START = re.compile(rb'\s*\{\s*"Records"\s*:\s*\[')
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]|"', re.DOTALL)
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_SCALAR = re.compile(rb'[^\s,\[\]{}"]+')
_SPACE = re.compile(rb"\s*")
_ENVELOPE_END = re.compile(rb"\s*\]\s*\}\s*\Z")
_OPEN, _CLOSE = frozenset(b"[{"), frozenset(b"]}")
_QUOTE, _COMMA = ord('"'), ord(",")


def _salvage_records(document: bytes) -> tuple[list[msgspec.Raw], bool]:
    """Spans of the Records array's elements in order, and whether the envelope was whole."""
    start = _RECORDS_START.match(document)
    if start is None:
        return [], False
    spans: list[msgspec.Raw] = []
    position = _skip_space(document, start.end())
    if _ENVELOPE_END.match(document, position):
        return spans, True
    while True:
        end = _value_end(document, position)
        if end is None:
            return spans, False
        spans.append(msgspec.Raw(document[position:end]))
        position = _skip_space(document, end)
        if _ENVELOPE_END.match(document, position):
            return spans, True
        if position >= len(document) or document[position] != _COMMA:
            return spans, False
        position = _skip_space(document, position + 1)


def _skip_space(document: bytes, position: int) -> int:
    match = _SPACE.match(document, position)
    return position if match is None else match.end()


def _value_end(document: bytes, position: int) -> int | None:
    """Where the JSON value starting at ``position`` ends; None if it does not."""
    if position >= len(document):
        return None
    first = document[position]
    if first in _OPEN:
        depth = 0
        for token in _TOKEN.finditer(document, position):
            mark = document[token.start()]
            if mark == _QUOTE:
                if token.end() - token.start() == 1:
                    return None  # a string that never closes: the document was cut
                continue
            depth += 1 if mark in _OPEN else -1
            if depth == 0:
                return token.end()
        return None
    matcher = _STRING if first == _QUOTE else _SCALAR
    match = matcher.match(document, position)
    return None if match is None else match.end()
