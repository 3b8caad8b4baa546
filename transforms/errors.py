"""The project's exceptions: each names the object (and record) it concerns and why."""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every error this project raises on purpose; picklable, carries its context."""

    def __init__(self, reason: str, *, key: str | None = None, record: int | None = None) -> None:
        self.reason = reason
        self.key = key
        self.record = record
        where = "" if key is None else f"{key}"
        if record is not None:
            where += f" record {record}"
        super().__init__(f"{where}: {reason}" if where else reason)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.reason, self.key, self.record))


def _rebuild(
    cls: type[PipelineError], reason: str, key: str | None, record: int | None
) -> PipelineError:
    return cls(reason, key=key, record=record)


class ObjectDecodeError(PipelineError):
    """A log object's bytes are not gzip/JSON of the CloudTrail shape; nothing could be read."""


class UnrecognisedKeyError(PipelineError):
    """An object key that is not a CloudTrail log, digest or Insights object."""


class Problem:
    """One object or record that was not converted, and why; reported, never raised."""

    __slots__ = ("event_id", "key", "reason", "record")

    def __init__(
        self, key: str, reason: str, record: int | None = None, event_id: str | None = None
    ) -> None:
        self.key = key
        self.reason = reason
        self.record = record
        self.event_id = event_id

    def as_dict(self) -> dict[str, object]:
        found: dict[str, object] = {"key": self.key, "reason": self.reason}
        if self.record is not None:
            found["record"] = self.record
        if self.event_id is not None:
            found["event_id"] = self.event_id
        return found

    def __repr__(self) -> str:
        return f"Problem({self.as_dict()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Problem) and self.as_dict() == other.as_dict()

    __hash__ = None  # type: ignore[assignment]
