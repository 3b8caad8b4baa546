"""Find a trail's folders with a few delimiter listings, never by listing every object.

CloudTrail writes ``[prefix/]AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/``.
Org IDs, accounts and regions are discovered one level at a time (a delimiter
LIST per folder), from wherever the source points: above ``AWSLogs/`` (a custom
key prefix, searched a few levels deep), at it, or anywhere below it. A run then
lists only the delivery-day folders it needs, each from its own mark.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from flows.storage import Storage
from transforms.errors import PipelineError
from transforms.keys import REGION_NAME

AWSLOGS = "AWSLogs"
KIND_FOLDERS = ("CloudTrail", "CloudTrail-Insight")
"""Folders whose objects hold records (API events, Insights events); digests are never listed."""

_ORG = re.compile(r"^o-[a-z0-9]{10,32}$")
_ACCOUNT = re.compile(r"^\d{12}$")
_DATE_PARTS = (re.compile(r"^\d{4}$"), re.compile(r"^\d{2}$"), re.compile(r"^\d{2}$"))


class SourceLayoutError(PipelineError):
    """The source does not lead to CloudTrail's ``AWSLogs/`` layout."""


@dataclass(frozen=True)
class TrailFolder:
    """``…/AWSLogs/[o-ORG/]ACCOUNT/KIND/REGION``: one region of one account's trail."""

    path: str
    account: str
    region: str
    kind: str = "CloudTrail"
    org_id: str | None = None

    def day_path(self, day: date) -> str:
        return f"{self.path}/{day:%Y/%m/%d}"


@dataclass(frozen=True)
class DayFolder:
    """One delivery-day folder of a trail: the unit of listing, state and backfill."""

    trail: TrailFolder
    day: date

    @property
    def path(self) -> str:
        return self.trail.day_path(self.day)


@dataclass
class Discovery:
    """The trail folders under a source, and the date prefix the source itself fixes."""

    trails: list[TrailFolder]
    date_prefix: tuple[int, ...] = ()

    def admits(self, day: date) -> bool:
        """Is ``day`` inside the source (when it points below a region folder)?"""
        return (day.year, day.month, day.day)[: len(self.date_prefix)] == self.date_prefix


def discover(
    source: Storage,
    *,
    accounts: Collection[str] | None = None,
    regions: Collection[str] | None = None,
    kinds: Collection[str] = KIND_FOLDERS,
) -> Discovery:
    """Every trail folder under ``source`` (optionally only some accounts and regions)."""
    parts = source.root.split("/")
    if AWSLOGS in parts:
        at = len(parts) - 1 - parts[::-1].index(AWSLOGS)
        roots = [("/".join(parts[: at + 1]), parts[at + 1 :])]
    else:
        found = _search_awslogs(source, source.root, source.settings.discovery_depth)
        if not found:
            raise SourceLayoutError(
                f"no {AWSLOGS}/ folder within {source.settings.discovery_depth} levels "
                "(point the source at the trail's bucket, its key prefix or AWSLogs/)",
                key=source.url(),
            )
        roots = [(path, []) for path in found]
    trails: list[TrailFolder] = []
    date_prefix: tuple[int, ...] = ()
    for awslogs, below in roots:
        found_trails, date_prefix = _trails_below(
            source, awslogs, below, accounts=accounts, regions=regions, kinds=kinds
        )
        trails += found_trails
    return Discovery(trails, date_prefix)


def window(today: date, lookback_days: int) -> list[date]:
    """The delivery days a scheduled run looks at: today and the ``lookback_days - 1`` before."""
    return [today - timedelta(days=n) for n in range(lookback_days - 1, -1, -1)]


def days_between(start: date, end: date) -> list[date]:
    """Every day from ``start`` to ``end``, both included."""
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def delivered_days(source: Storage, trail: TrailFolder) -> list[date]:
    """The delivery-day folders a trail has (year, month, day delimiter listings)."""
    days: list[date] = []
    for year in _names(source, trail.path, _DATE_PARTS[0]):
        for month in _names(source, f"{trail.path}/{year}", _DATE_PARTS[1]):
            for day in _names(source, f"{trail.path}/{year}/{month}", _DATE_PARTS[2]):
                try:
                    days.append(date(int(year), int(month), int(day)))
                except ValueError:
                    continue  # Not a calendar date: no CloudTrail folder.
    return days


def delivered_days_before(source: Storage, trail: TrailFolder, first: date) -> list[date]:
    """The delivery-day folders a trail has before ``first``: only the year and month
    folders up to it are listed (a delimiter LIST each), never an object."""
    days: list[date] = []
    for year in _names(source, trail.path, _DATE_PARTS[0]):
        if int(year) > first.year:
            continue
        for month in _names(source, f"{trail.path}/{year}", _DATE_PARTS[1]):
            if (int(year), int(month)) > (first.year, first.month):
                continue
            for day in _names(source, f"{trail.path}/{year}/{month}", _DATE_PARTS[2]):
                try:
                    found = date(int(year), int(month), int(day))
                except ValueError:
                    continue  # Not a calendar date: no CloudTrail folder.
                if found < first:
                    days.append(found)
    return days


def day_folders(trails: Iterable[TrailFolder], days: Iterable[date]) -> list[DayFolder]:
    """Every (trail, day) pair, in a stable order."""
    day_list = sorted(set(days))
    return [DayFolder(trail, day) for trail in trails for day in day_list]


def _search_awslogs(source: Storage, root: str, depth: int) -> list[str]:
    """``AWSLogs`` folders at most ``depth`` levels below ``root``, breadth first."""
    found: list[str] = []
    level = [root]
    for _ in range(depth + 1):
        below: list[str] = []
        for folder in level:
            for child in source.list_dir(folder).folders:
                (found if posixpath.basename(child) == AWSLOGS else below).append(child)
        if found or not below:
            return found
        level = below
    return found


def _trails_below(
    source: Storage,
    awslogs: str,
    below: list[str],
    *,
    accounts: Collection[str] | None,
    regions: Collection[str] | None,
    kinds: Collection[str],
) -> tuple[list[TrailFolder], tuple[int, ...]]:
    rest = list(below)
    where = source.url(awslogs + ("/" + "/".join(below) if below else ""))

    # [o-ORGID/]ACCOUNT
    owners: list[tuple[str | None, str]] = []  # (org, account folder path)
    if rest and _ORG.match(rest[0]):
        org = rest.pop(0)
        if rest:
            owners.append((org, f"{awslogs}/{org}/{rest.pop(0)}"))
        else:
            owners += [(org, p) for p in _folders(source, f"{awslogs}/{org}", _ACCOUNT)]
    elif rest:
        owners.append((None, f"{awslogs}/{rest.pop(0)}"))
    else:
        for path in source.list_dir(awslogs).folders:
            name = posixpath.basename(path)
            if _ACCOUNT.match(name):
                owners.append((None, path))
            elif _ORG.match(name):
                owners += [(name, p) for p in _folders(source, path, _ACCOUNT)]
    for _, path in owners:
        if not _ACCOUNT.match(posixpath.basename(path)):
            raise SourceLayoutError(f"{posixpath.basename(path)!r} is not an account ID", key=where)
    if accounts is not None:
        owners = [(o, p) for o, p in owners if posixpath.basename(p) in accounts]

    # KIND/REGION
    trails: list[TrailFolder] = []
    for org_id, account_path in owners:
        account = posixpath.basename(account_path)
        if rest:
            kind_paths = [f"{account_path}/{rest[0]}"]
            if rest[0] not in kinds:
                raise SourceLayoutError(f"{rest[0]!r} is not a folder of log records", key=where)
        else:
            kind_paths = [
                p for p in source.list_dir(account_path).folders if posixpath.basename(p) in kinds
            ]
        for kind_path in kind_paths:
            if len(rest) >= 2:
                region_paths = [f"{kind_path}/{rest[1]}"]
            else:
                region_paths = _folders(source, kind_path, REGION_NAME)
            for region_path in region_paths:
                region = posixpath.basename(region_path)
                if regions is None or region in regions:
                    trails.append(
                        TrailFolder(
                            region_path, account, region, posixpath.basename(kind_path), org_id
                        )
                    )

    date_parts = rest[2:]
    for part, pattern in zip(date_parts, _DATE_PARTS, strict=False):
        if not pattern.match(part):
            raise SourceLayoutError(f"{part!r} is not a date folder", key=where)
    if len(date_parts) > len(_DATE_PARTS):
        raise SourceLayoutError("the source is below a delivery-day folder", key=where)
    return trails, tuple(int(p) for p in date_parts)


def _folders(source: Storage, folder: str, pattern: re.Pattern[str]) -> list[str]:
    return [p for p in source.list_dir(folder).folders if pattern.match(posixpath.basename(p))]


def _names(source: Storage, folder: str, pattern: re.Pattern[str]) -> list[str]:
    return [posixpath.basename(p) for p in _folders(source, folder, pattern)]
