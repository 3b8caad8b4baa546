"""The hunting pack: named security questions, one Athena (Trino) SQL file each, as data.

Each ``*.sql`` file in this package opens with a header of ``-- key: value`` lines
(``name``, ``title``, ``description``, ``why``, ``techniques`` (MITRE ATT&CK IDs),
``severity``, and one ``param`` line per parameter: ``name = default | help``; an
indented ``--`` line continues the key above it). The SQL itself starts with a
``params`` CTE holding every parameter's default (``<default> AS <name>``), so a file
runs unchanged in Athena, and ``render`` swaps in other values without touching the
rest. This module only reads its own package data: no I/O beyond that, no engine.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from importlib import resources

SEVERITIES = ("low", "medium", "high", "critical")
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)
"""A window's start when none is given: the whole table."""
RESULT_COLUMNS = (
    "eventid",
    "eventtime",
    "eventsource",
    "eventname",
    "arn",
    "sourceipaddress",
    "awsregion",
    "recipientaccountid",
)
"""What every question returns first (``arn`` is ``useridentity.arn``), then ``errorcode``
and ``detail``, a short text saying what was found."""

_TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_HEADER_LINE = re.compile(r"^-- (?P<key>[a-z]+): (?P<value>.*)$")
_CONTINUATION = re.compile(r"^--   (?P<value>.*)$")
_PARAM = re.compile(r"^(?P<name>[a-z_]+) = (?P<default>.+?) \| (?P<help>.+)$")


class HuntPackError(ValueError):
    """A pack file breaks the format (a bug in the pack, found by its tests)."""


@dataclass(frozen=True)
class Parameter:
    name: str
    default: str
    """The default as SQL text, e.g. ``current_timestamp - INTERVAL '1' DAY`` or ``10``."""
    help: str


@dataclass(frozen=True)
class Hunt:
    """One question of the pack."""

    name: str
    title: str
    description: str
    why: str
    techniques: tuple[str, ...]
    severity: str
    parameters: tuple[Parameter, ...]
    sql: str
    """The file's full text: the header comments and the SQL with the defaults."""

    def render(self, values: Mapping[str, object] | None = None) -> str:
        """The SQL with ``values`` (parameter name -> int or datetime/date) in place of
        the defaults; a value of None keeps the default."""
        sql = self.sql
        known = {p.name: p for p in self.parameters}
        for name, value in (values or {}).items():
            if value is None:
                continue
            if name not in known:
                raise HuntPackError(f"{self.name} has no parameter {name!r}")
            line = f"{known[name].default} AS {name}"
            sql = sql.replace(line, f"{sql_literal(value)} AS {name}", 1)
        return sql


def sql_literal(value: object) -> str:
    """A parameter value as a Trino literal: timestamps in UTC, integers as digits."""
    if isinstance(value, datetime):
        utc = value.astimezone(UTC) if value.tzinfo else value
        return f"TIMESTAMP '{utc:%Y-%m-%d %H:%M:%S}'"
    if isinstance(value, date):
        return f"TIMESTAMP '{value:%Y-%m-%d} 00:00:00'"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise HuntPackError(f"a parameter value must be an int, date or datetime, not {value!r}")


def parse_hunt(text: str) -> Hunt:
    """One pack file's text as a Hunt; raises HuntPackError naming what is wrong."""
    fields: dict[str, str] = {}
    params: list[Parameter] = []
    last: str | None = None
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        if (more := _CONTINUATION.match(line)) and last:
            if last == "param":
                raise HuntPackError(f"a param line cannot continue: {line!r}")
            fields[last] += " " + more["value"]
            continue
        header = _HEADER_LINE.match(line)
        if header is None:
            raise HuntPackError(f"not a header line: {line!r}")
        key, value = header["key"], header["value"]
        last = key
        if key == "param":
            declared = _PARAM.match(value)
            if declared is None:
                raise HuntPackError(f"param must read 'name = default | help': {value!r}")
            params.append(Parameter(declared["name"], declared["default"], declared["help"]))
        elif key in fields:
            raise HuntPackError(f"{key} given twice")
        else:
            fields[key] = value
    missing = {"name", "title", "description", "why", "techniques", "severity"} - set(fields)
    if missing:
        raise HuntPackError(f"header lacks {', '.join(sorted(missing))}")
    name = fields["name"]
    where = f"hunt {name}"
    if not _NAME.match(name):
        raise HuntPackError(f"{where}: a name is lower-case letters, digits and _")
    techniques = tuple(t.strip() for t in fields["techniques"].split(","))
    if not all(_TECHNIQUE.match(t) for t in techniques):
        raise HuntPackError(f"{where}: techniques must be ATT&CK IDs (T1234 or T1234.001)")
    if fields["severity"] not in SEVERITIES:
        raise HuntPackError(f"{where}: severity must be one of {SEVERITIES}")
    if not any(p.name == "window_start" for p in params):
        raise HuntPackError(f"{where}: every question takes a window_start parameter")
    for param in params:
        if text.count(f"{param.default} AS {param.name}") != 1:
            raise HuntPackError(
                f"{where}: the params CTE must hold '{param.default} AS {param.name}' once"
            )
    return Hunt(
        name=name,
        title=fields["title"],
        description=fields["description"],
        why=fields["why"],
        techniques=techniques,
        severity=fields["severity"],
        parameters=tuple(params),
        sql=text,
    )


@cache
def load_pack() -> tuple[Hunt, ...]:
    """Every question of the pack, by name; each file's name is its question's name."""
    hunts = []
    for entry in sorted(resources.files(__name__).iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        hunt = parse_hunt(entry.read_text(encoding="utf-8"))
        if f"{hunt.name}.sql" != entry.name:
            raise HuntPackError(f"{entry.name} holds hunt {hunt.name}: name them alike")
        hunts.append(hunt)
    return tuple(hunts)


def select_hunts(names: list[str] | tuple[str, ...] = ()) -> tuple[Hunt, ...]:
    """The questions named (all when none are), in the pack's order."""
    pack = load_pack()
    if not names:
        return pack
    known = {h.name for h in pack}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise HuntPackError(
            f"no such question: {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    return tuple(h for h in pack if h.name in names)
