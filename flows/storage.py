"""Every byte in or out goes through fsspec, so a local folder and ``s3://`` work alike."""

from __future__ import annotations

import posixpath
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fsspec
from fsspec.core import url_to_fs


@dataclass(frozen=True)
class StoredObject:
    path: str
    size: int


class Storage:
    """A folder (local path or URL) and the filesystem that holds it."""

    def __init__(self, url: str, **options: Any) -> None:
        self.fs: fsspec.AbstractFileSystem
        self.fs, root = url_to_fs(url, **options)
        self.root = root.rstrip("/")
        self.is_local = "file" in _protocols(self.fs)

    def path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def url(self, path: str | None = None) -> str:
        """How a user names ``path``: a plain path locally, ``s3://bucket/key`` remotely."""
        path = self.root if path is None else path
        return path if self.is_local else self.fs.unstrip_protocol(path)

    def list_files(self, under: str | None = None) -> Iterator[StoredObject]:
        """Every file below ``under`` (default: the root), in key order."""
        found = self.fs.find(under or self.root, detail=True)
        for path in sorted(found):
            info = found[path]
            if info.get("type") == "file":
                yield StoredObject(path, int(info.get("size") or 0))

    def read_many(self, paths: list[str]) -> dict[str, bytes | Exception]:
        """Fetch many objects at once; a failed read is returned, not raised."""
        if not paths:
            return {}
        fetched = self.fs.cat(paths, on_error="return")
        if not isinstance(fetched, dict):  # a single path comes back bare
            fetched = {paths[0]: fetched}
        return fetched

    def read(self, path: str) -> bytes:
        data: bytes = self.fs.cat_file(path)
        return data

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

    def write_atomically(self, path: str, data: bytes) -> None:
        """Readers see the whole file or none: write beside the table, then move into place."""
        staging = self.path("_staging", f"{uuid.uuid4().hex}.tmp")
        self._make_folder(posixpath.dirname(staging))
        self.fs.pipe_file(staging, data)
        self._make_folder(posixpath.dirname(path))
        self.fs.mv(staging, path)

    def _make_folder(self, folder: str) -> None:
        # Issue 7: only local folders need creating. On S3, s3fs's makedirs probes the bucket
        # (HeadBucket, GetBucketLocation, then CreateBucket): rights a least-privilege role
        # confined to its prefix does not have, and two requests per write for nothing.
        if self.is_local:
            self.fs.makedirs(folder, exist_ok=True)

    def remove(self, path: str) -> None:
        self.fs.rm_file(path)


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
