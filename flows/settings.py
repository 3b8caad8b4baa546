"""Settings, read once from the environment (prefix ``CTPARQUET_``), each field described.

The standard library only: every command builds a ``Settings``, and pydantic with
pydantic-settings cost 0.12-0.15 s of each one's start-up for what is a dataclass
read from the environment. ``Settings()`` reads ``CTPARQUET_<FIELD>`` (any case, as
pydantic-settings did; unknown ``CTPARQUET_`` variables are ignored), parses it as
pydantic did (ints, floats, the bool words, the Literal's choices, a JSON list) and
checks each field's bounds (``gt``/``ge`` in its metadata); keyword arguments win over
the environment and are checked too. A refused value raises ``SettingsError``, which
names the variable (or keyword), the value and the rule. ``dataclasses.replace``
gives a changed copy; instances compare by value and pickle (Dask, Prefect).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

ENV_PREFIX = "CTPARQUET_"


class SettingsError(ValueError):
    """Settings refused; ``problems`` says which variable or keyword, its value, the rule."""

    @property
    def problems(self) -> tuple[str, ...]:
        """One line per refused value."""
        return tuple(str(problem) for problem in self.args)

    def __str__(self) -> str:
        return "; ".join(self.problems)


def described(
    description: str, *, gt: float | None = None, ge: float | None = None
) -> dict[str, Any]:
    """A field's metadata: what it does (the documentation) and the bounds it must keep."""
    return {"description": description, "gt": gt, "ge": ge}


_T = TypeVar("_T")


def _reading_the_environment(cls: type[_T]) -> type[_T]:
    """``cls`` (a dataclass) whose ``__init__`` takes the keywords given, the environment's
    ``CTPARQUET_`` variables for the fields not given, and checks every value taken.

    The dataclass's own ``__init__`` does the assignment (and keeps its signature for
    type checkers and ``inspect``); only its inputs are resolved here.
    """
    fields = {spec.name: spec for spec in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    checks = {name: _check_for(hints[name], spec.metadata) for name, spec in fields.items()}
    assign = cls.__init__

    @functools.wraps(assign)
    def __init__(self: _T, **given: Any) -> None:  # noqa: N807 - it is the class's __init__
        unknown = sorted(set(given) - set(fields))
        if unknown:
            raise TypeError(f"{cls.__name__}() got unexpected keyword arguments {unknown}")
        values: dict[str, Any] = {}
        problems: list[str] = []
        for name, value in given.items():
            try:
                values[name] = checks[name].python(value)
            except _RuleError as refused:
                problems.append(f"{cls.__name__}({name}={value!r}): {refused}")
        if len(given) < len(fields):  # dataclasses.replace gives every field
            unset = [name for name in fields if name not in given]
            for variable, name, text in _variables(os.environ, unset):
                try:
                    value = checks[name].text(text)
                except _RuleError as refused:
                    problems.append(f"{variable}={text!r}: {refused}")
                else:
                    if value is not _UNSET:
                        values[name] = value
        if problems:
            raise SettingsError(*problems)
        assign(self, **values)

    cls.__init__ = __init__  # type: ignore[assignment, method-assign]
    return cls


def _variables(environ: Mapping[str, str], names: list[str]) -> list[tuple[str, str, str]]:
    """``(variable, field, value)`` of each of ``names`` set in ``environ``, in their order,
    whatever the variable's case; of two spellings the one ``environ`` lists last wins, as
    in pydantic-settings (which lowercases the environment into a dict)."""
    wanted = {ENV_PREFIX.lower() + name: name for name in names}
    found: dict[str, tuple[str, str, str]] = {}
    for variable, text in environ.items():
        name = wanted.get(variable.lower())
        if name is not None:
            found[name] = (variable, name, text)
    return [found[name] for name in names if name in found]


class _RuleError(Exception):
    """A value breaks its field's rule (the message states the rule)."""


_UNSET: Any = object()
"""What a variable's text reads as when it stands for no value (``null`` for a JSON list):
the field keeps its default."""


@dataclass(frozen=True)
class _Check:
    text: Callable[[str], Any]
    """An environment variable's text to the field's value."""
    python: Callable[[Any], Any]
    """A keyword's value to the field's value (no parsing of strings: the type is checked)."""


def _check_for(hint: Any, metadata: Mapping[str, Any]) -> _Check:
    """The parsing and checks of a field of type ``hint`` with ``metadata``'s bounds."""
    bounded = _bounds(metadata.get("gt"), metadata.get("ge"))
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) and len(args) == 2 and type(None) in args:
        inner = _check_for(next(a for a in args if a is not type(None)), metadata)
        return _Check(inner.text, lambda value: None if value is None else inner.python(value))
    if typing.get_origin(hint) is Literal:
        return _Check(_choice(args), _choice(args))
    if hint in _SCALARS:
        text, python = _SCALARS[hint]
        return _Check(bounded(text), bounded(python))
    if typing.get_origin(hint) is list and args == (str,):
        return _Check(_strings_from_json, _strings)
    raise TypeError(f"no reader for settings of type {hint!r}")  # a new field's new type


def _bounds(
    gt: float | None, ge: float | None
) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    def bounded(read: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def checked(value: Any) -> Any:
            number = read(value)
            if gt is not None and not number > gt:  # NaN is refused too
                raise _RuleError(f"must be greater than {gt}")
            if ge is not None and not number >= ge:
                raise _RuleError(f"must be greater than or equal to {ge}")
            return number

        return checked

    return bounded


# pydantic's lax parsing of text, which pydantic-settings applied to the environment:
# surrounding whitespace ignored, single underscores between digits, an int may end in
# ".0"; ASCII digits only (Python's int() and float() also take other scripts' digits).
_INT = re.compile(r"[+-]?[0-9]+(?:_[0-9]+)*(?:\.0+)?", re.ASCII)
_FLOAT = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?|inf|infinity|nan)",
    re.ASCII | re.IGNORECASE,
)
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


def _int_from_text(text: str) -> int:
    digits = text.strip()
    if _INT.fullmatch(digits):
        try:
            return int(digits.partition(".")[0])
        except ValueError:  # over Python's 4,300 digits
            pass
    raise _RuleError("not an integer")


def _float_from_text(text: str) -> float:
    number = text.strip()
    underscores = "_" in text and not (text.startswith("_") or text.endswith("_") or "__" in text)
    if underscores and not _FLOAT.fullmatch(number):
        number = text.replace("_", "")  # as pydantic: 1_000.5, 1_e3, not " 1_0"
    if _FLOAT.fullmatch(number):
        return float(number)
    raise _RuleError("not a number")


def _bool_from_text(text: str) -> bool:
    word = text.lower()  # no stripping, as pydantic
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise _RuleError(f"not a bool (one of {', '.join(sorted(_TRUE | _FALSE))})")


def _choice(choices: tuple[Any, ...]) -> Callable[[Any], Any]:
    def chosen(value: Any) -> Any:
        if isinstance(value, str) and value in choices:
            return value
        raise _RuleError(f"not one of {', '.join(map(repr, choices))}")

    return chosen


def _of_type(kind: type, name: str) -> Callable[[Any], Any]:
    def checked(value: Any) -> Any:
        if isinstance(value, kind):
            return value
        raise _RuleError(f"not {name}")

    return checked


def _int_value(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _RuleError("not an integer")


def _float_value(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise _RuleError("not a number")


def _strings_from_json(text: str) -> Any:  # a list of strings, or _UNSET
    try:
        value = json.loads(text)
    except ValueError:
        raise _RuleError('not JSON (a list of strings, e.g. ["eu-west-1"])') from None
    if value is None:  # pydantic-settings: JSON null is no value, the default applies
        return _UNSET
    return _strings(value)


def _strings(value: Any) -> list[str]:
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return list(value)
    raise _RuleError("not a list of strings")


_SCALARS: dict[Any, tuple[Callable[[str], Any], Callable[[Any], Any]]] = {
    int: (_int_from_text, _int_value),
    float: (_float_from_text, _float_value),
    bool: (_bool_from_text, _of_type(bool, "a bool")),
    str: (str, _of_type(str, "a string")),
}
"""Each scalar type's readers: of an environment variable's text, of a keyword's value."""


@_reading_the_environment
@dataclass(frozen=True, kw_only=True)
class Settings:
    """Knobs of a conversion run; every one has a safe default."""

    batch_bytes: int = field(
        default=4 * 1024 * 1024,
        metadata=described(
            "Compressed bytes of log objects converted together, per worker thread. "
            "Bounds memory (measured peak RSS with 4 MiB on the 300,000-event benchmark: "
            "256 MB with one worker, 387 MB with two). The small files that result are "
            "merged by compaction.",
            gt=0,
        ),
    )
    batch_objects: int = field(
        default=5_000,
        metadata=described("Most log objects in one batch, however small they are.", gt=0),
    )
    row_group_rows: int = field(
        default=122_880,
        metadata=described("Rows per Parquet row group in written files.", gt=0),
    )
    workers: int | None = field(
        default=None,
        metadata=described(
            "Workers converting an ingest run's batches in parallel. Unset: one per core "
            "this process may use (its CPU affinity, capped by its cgroup's CPU quota) when "
            "more than one batch is pending, "
            "else 1. Each writes a partition only under its lease, so de-duplication sees "
            "every write.",
            gt=0,
        ),
    )
    worker_processes: bool = field(
        default=True,
        metadata=described(
            "Ingest's workers are processes forked at the run's start where the process "
            "then runs a single thread (a command-line run), each pinned to a core of its "
            "own (9-10% faster than threads on two cores); elsewhere, and when false, they "
            "are threads of the run's process."
        ),
    )
    read_concurrency: int = field(
        default=16,
        metadata=described("Log objects fetched at once from storage (S3 latency hiding).", gt=0),
    )

    lookback_days: int = field(
        default=2,
        metadata=described(
            "Delivery-date folders an ingest run lists: today and the days before it "
            "(2 = today and yesterday). CloudTrail's folder date is the delivery date, and "
            "late deliveries land in the current folder, so a short window sees every new "
            "object. 0 lists every delivery day under the source (a first catch-up run).",
            ge=0,
        ),
    )
    settle_minutes: int = field(
        default=60,
        metadata=described(
            "How long after its name's time (or its upload) an object must be before the "
            "listing mark moves past it, and how long after midnight UTC a day folder is "
            "taken as closed. Objects younger than this are re-listed (not re-read) next run.",
            ge=0,
        ),
    )
    max_read_attempts: int = field(
        default=3,
        metadata=described(
            "Runs that try to read a log object before it is quarantined as unreadable (for "
            "`ctparquet redrive`). Until then its day folder is pending: every ingest lists "
            "it, whatever the look-back window.",
            ge=1,
        ),
    )
    discovery_depth: int = field(
        default=3,
        metadata=described(
            "Folder levels searched for AWSLogs/ when the source is above it (a trail's "
            "custom S3 key prefix); one delimiter listing per folder visited.",
            ge=0,
        ),
    )

    s3_retry_mode: Literal["standard", "adaptive"] = field(
        default="standard",
        metadata=described(
            "botocore retry mode for every S3 call (s3fs and boto3 alike): 'standard' (AWS's "
            "recommendation) retries throttling, 5xx and connection errors with jittered "
            "exponential backoff; 'adaptive' also rate-limits the client after throttling."
        ),
    )
    s3_max_attempts: int = field(
        default=10,
        metadata=described(
            "Attempts per S3 request (first try included) on throttling and 5xx.", gt=0
        ),
    )
    aws_credentials_block: str | None = field(
        default=None,
        metadata=described(
            "Name of a prefect-aws AwsCredentials block to use instead of the default AWS "
            "credential chain (environment, profile, instance or task role)."
        ),
    )
    aws_profile: str | None = field(
        default=None,
        metadata=described(
            "AWS profile (~/.aws/config) for every client, s3fs and boto3 alike (`--profile`); "
            "it wins over keys in the environment, as the AWS CLI's --profile does."
        ),
    )
    aws_region: str | None = field(
        default=None,
        metadata=described("AWS region of every client, s3fs and boto3 alike (`--region`)."),
    )

    lock_ttl_seconds: float = field(
        default=300.0,
        metadata=described(
            "Life of a lock on a table partition while a batch writes it; a lock left by a "
            "killed run is taken over after this long. Must exceed 4/3 of the S3 retry "
            "budget (111 s for 10 attempts): no PUT is made under a shorter lease.",
            gt=0,
        ),
    )
    lock_wait_seconds: float = field(
        default=900.0,
        metadata=described(
            "Longest wait for a partition lock another run holds before failing.", gt=0
        ),
    )

    backfill_concurrency: int = field(
        default=8,
        metadata=described(
            "Backfill units (account, region, day) converted at the same time.", gt=0
        ),
    )
    dask_address: str | None = field(
        default=None,
        metadata=described(
            "Dask scheduler the backfill runs its units on (tcp://host:8786), or 'local' for "
            "a distributed.LocalCluster on this machine; unset runs them in this process."
        ),
    )
    dask_local_workers: int = field(
        default=2,
        metadata=described("Worker processes of the LocalCluster started for --dask local.", gt=0),
    )
    glue_database: str | None = field(
        default=None,
        metadata=described(
            "Glue database of the tables. With glue_table set, every ingest run registers "
            "the tables it wrote when missing, outdated or not projecting a region it wrote."
        ),
    )
    glue_table: str | None = field(
        default=None, metadata=described("Glue table name of the events table.")
    )
    glue_insights_table: str | None = field(
        default=None,
        metadata=described(
            "Glue table name of the Insights table (default: <glue_table>_insights)."
        ),
    )
    glue_regions: list[str] = field(
        default_factory=list,
        metadata=described(
            "Regions to project besides those present (JSON list), e.g. the regions a trail "
            "logs that have no events yet."
        ),
    )
    athena_workgroup: str | None = field(
        default=None,
        metadata=described(
            "Register by running DDL in this Athena workgroup instead of with Glue's API "
            "(for accounts that allow catalog changes only through Athena)."
        ),
    )
    athena_output: str | None = field(
        default=None,
        metadata=described("s3:// URL for Athena's query results, if the workgroup sets none."),
    )

    # --- Encryption of what the pipeline writes (issue 7) ---------------------------------
    sse_kms_key_id: str | None = field(
        default=None,
        metadata=described(
            "KMS key (id, ARN or alias ARN) for SSE-KMS on every object written under an "
            "s3:// destination. Unset: the bucket's default encryption applies."
        ),
    )
    sse_kms_bucket_key: bool = field(
        default=True,
        metadata=described(
            "Use an S3 Bucket Key with SSE-KMS (far fewer KMS requests, lower cost)."
        ),
    )
