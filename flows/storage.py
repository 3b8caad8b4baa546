"""Every byte in or out goes through fsspec, so a local folder and ``s3://`` work alike.

On S3 the few operations that decide correctness or cost are spoken to the API
directly (through s3fs's client, so retries, credentials and request counting
are the same everywhere): delimiter and ``StartAfter`` listings, conditional
writes (``If-None-Match: *`` to create, ``If-Match: ETag`` to replace) and
refusals turned into errors naming the bucket, key and IAM action. Local folders
get the same semantics from the operating system (hard links, ``flock``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import posixpath
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO

import fsspec
from fsspec.asyn import sync
from fsspec.core import url_to_fs
from fsspec.utils import get_protocol

from flows.aws import (
    RequestCounter,
    access_denied,
    retry_budget_seconds,
    s3fs_options,
    sse_kms_arguments,
)
from flows.settings import Settings

UPLOAD_PART_BYTES = 8 * 1024 * 1024
"""Part size of a streamed upload: what a large write holds in memory (S3's minimum is 5 MiB;
10,000 parts of 8 MiB allow files of 80 GB)."""


@dataclass(frozen=True)
class StoredObject:
    path: str
    size: int
    modified: datetime | None = None
    etag: str | None = None
    """S3's ETag as listed (None locally): tells a re-upload of the same size apart."""


@dataclass
class Listing:
    """One level of a folder: its sub-folders and its files (a delimiter listing)."""

    folders: list[str] = field(default_factory=list)
    files: list[StoredObject] = field(default_factory=list)


class Storage:
    """A folder (local path or URL) and the filesystem that holds it."""

    def __init__(
        self,
        url: str,
        *,
        settings: Settings | None = None,
        counter: RequestCounter | None = None,
        **options: Any,
    ) -> None:
        self.settings = settings or Settings()  # from the environment
        self.counter = counter or RequestCounter()
        self.is_s3 = get_protocol(url) in ("s3", "s3a")
        self.put_arguments: dict[str, Any] = {}
        """Added to every PUT: SSE-KMS under the configured key (issue 7)."""
        if self.is_s3:
            options = {**s3fs_options(self.settings, self.counter), **options}
            if self.settings.sse_kms_key_id:
                self.put_arguments = sse_kms_arguments(self.settings)
                options["s3_additional_kwargs"] = self.put_arguments
        self.fs: fsspec.AbstractFileSystem
        self.fs, root = url_to_fs(url, **options)
        if self.is_s3:
            # botocore is the one retry layer (throttling, 5xx, connection errors): s3fs's
            # own retry loop would multiply its attempts.
            self.fs.retries = 1
        self.root = root.rstrip("/")
        self.is_local = "file" in _protocols(self.fs)

    def path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def url(self, path: str | None = None) -> str:
        """How a user names ``path``: a plain path locally, ``s3://bucket/key`` remotely."""
        path = self.root if path is None else path
        return path if self.is_local else self.fs.unstrip_protocol(path)

    @property
    def retry_budget_seconds(self) -> float:
        """Longest time botocore's retries may add to one S3 request (0 locally): a lease
        must have this much left before a PUT made under it (``flows.lock``)."""
        return retry_budget_seconds(self.settings) if self.is_s3 else 0.0

    def requests(self) -> Counter[str]:
        """S3 requests made through this storage so far, by operation."""
        return self.counter.snapshot()

    # Listing

    def list_files(self, under: str | None = None) -> Iterator[StoredObject]:
        """Every file below ``under`` (default: the root), in key order."""
        if self.is_s3:
            yield from self.list_after(under or self.root)
            return
        found = self.fs.find(under or self.root, detail=True)
        for path in sorted(found):
            info = found[path]
            if info.get("type") == "file":
                yield StoredObject(path, int(info.get("size") or 0))

    def list_dir(self, folder: str) -> Listing:
        """The sub-folders and files directly in ``folder`` (one delimiter LIST per 1,000)."""
        listing = Listing()
        if self.is_s3:
            bucket, key = self._split(folder)
            prefix = f"{key.rstrip('/')}/" if key else ""
            for page in self._pages(bucket, prefix, Delimiter="/"):
                listing.folders += [
                    f"{bucket}/{p['Prefix'].rstrip('/')}" for p in page.get("CommonPrefixes", [])
                ]
                listing.files += [_s3_object(bucket, o) for o in page.get("Contents", [])]
            return listing
        try:
            entries = self.fs.ls(folder, detail=True)
        except FileNotFoundError:
            return listing
        for entry in sorted(entries, key=lambda e: str(e["name"])):
            if entry["type"] == "directory":
                listing.folders.append(entry["name"])
            else:
                listing.files.append(_local_object(entry))
        return listing

    def list_after(self, folder: str, start_after: str | None = None) -> list[StoredObject]:
        """Every file below ``folder`` whose path sorts after ``start_after``, in key order.

        On S3 this is ``ListObjectsV2`` with ``StartAfter``: objects already seen cost
        nothing to skip, however many there are.
        """
        if self.is_s3:
            bucket, key = self._split(folder)
            prefix = f"{key.rstrip('/')}/" if key else ""
            extra = {"StartAfter": self._split(start_after)[1]} if start_after else {}
            return [
                _s3_object(bucket, o)
                for page in self._pages(bucket, prefix, **extra)
                for o in page.get("Contents", [])
            ]
        try:
            found = self.fs.find(folder, detail=True)
        except FileNotFoundError:
            return []
        return [
            _local_object(found[path])
            for path in sorted(found)
            if found[path].get("type") == "file" and (start_after is None or path > start_after)
        ]

    # Reading

    def read_many(self, paths: list[str]) -> dict[str, bytes | Exception]:
        """Fetch many objects at once; a failed read is returned, not raised."""
        if not paths:
            return {}
        extra = {"batch_size": self.settings.read_concurrency} if self.is_s3 else {}
        fetched = self.fs.cat(paths, on_error="return", **extra)
        if not isinstance(fetched, dict):  # a single path comes back bare
            fetched = {paths[0]: fetched}
        if self.is_s3:
            for path, value in fetched.items():
                if isinstance(value, PermissionError):
                    fetched[path] = access_denied(value, *self._split(path), "GetObject")
        return fetched

    def read(self, path: str) -> bytes:
        if self.is_s3:
            found = self.read_versioned(path)
            if found is None:
                raise FileNotFoundError(self.url(path))
            return found[0]
        data: bytes = self.fs.cat_file(path)
        return data

    def read_versioned(self, path: str) -> tuple[bytes, str] | None:
        """An object's bytes and version tag (ETag), or None if there is no such object."""
        if self.is_s3:
            bucket, key = self._split(path)
            try:
                response = self._call("get_object", bucket, key, Bucket=bucket, Key=key)
            except FileNotFoundError:
                return None
            body = response["Body"]
            data = _read_body(self.fs, body)
            return data, str(response["ETag"])
        try:
            with open(path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            return None
        return data, _digest(data)

    def read_with_metadata(self, path: str) -> tuple[bytes, dict[str, str]]:
        """An object's bytes and its user metadata (``x-amz-meta-*``; none for local files)."""
        if not self.is_s3:
            return self.read(path), {}
        bucket, key = self._split(path)
        response = self._call("get_object", bucket, key, Bucket=bucket, Key=key)
        return _read_body(self.fs, response["Body"]), dict(response.get("Metadata", {}))

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

    # Writing

    def write_atomically(self, path: str, data: bytes) -> None:
        """Readers see the whole file or none (an S3 PUT is; locally, write aside then rename)."""
        if self.is_s3:
            bucket, key = self._split(path)
            self._call("put_object", bucket, key, Bucket=bucket, Key=key, Body=data)
            return
        staging = self.path("_staging", f"{uuid.uuid4().hex}.tmp")
        self.fs.makedirs(posixpath.dirname(staging), exist_ok=True)
        self.fs.pipe_file(staging, data)
        self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        self.fs.mv(staging, path)

    @contextlib.contextmanager
    def streaming_write(self, path: str) -> Iterator[BinaryIO]:
        """A file to write ``path`` through as its bytes are produced; readers see all or none.

        On S3, s3fs's writer: a multipart upload in parts of ``UPLOAD_PART_BYTES`` (one PUT
        if the file is smaller), through the same client, so retries, request counting and
        the SSE-KMS arguments are those of every PUT. Memory holds one part, whatever the
        file's size. Locally a temporary file moved into place. If the block raises,
        nothing is left behind: the upload is aborted, the temporary file removed.
        """
        if self.is_s3:
            file = self.fs.open(path, "wb", block_size=UPLOAD_PART_BYTES)
            try:
                yield file
                file.close()
            except PermissionError as error:
                _discard(file)
                raise access_denied(error, *self._split(path), "PutObject") from error
            except BaseException:
                _discard(file)
                raise
            return
        staging = self.path("_staging", f"{uuid.uuid4().hex}.tmp")
        os.makedirs(posixpath.dirname(staging), exist_ok=True)
        try:
            with open(staging, "wb") as local:
                yield local
            os.makedirs(posixpath.dirname(path), exist_ok=True)
            os.replace(staging, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(staging)

    def publish(self, staged: str, path: str) -> None:
        """Make a finished file visible at ``path``: a server-side copy on S3 (the staged
        object stays until removed), a rename locally (instant, and atomic)."""
        if self.is_s3:
            bucket, key = self._split(path)
            source_bucket, source_key = self._split(staged)
            source = {"Bucket": source_bucket, "Key": source_key}
            self._call("copy_object", bucket, key, Bucket=bucket, Key=key, CopySource=source)
            return
        os.makedirs(posixpath.dirname(path), exist_ok=True)
        os.replace(staged, path)

    def remove_many(self, paths: list[str]) -> None:
        """Delete many files at once: on S3 one DeleteObjects per 1,000 keys, not one
        request each, so a swap of 200 small files takes one round trip."""
        if not self.is_s3:
            for path in paths:
                self.remove(path)
            return
        by_bucket: dict[str, list[str]] = {}
        for path in paths:
            bucket, key = self._split(path)
            by_bucket.setdefault(bucket, []).append(key)
        for bucket, keys in by_bucket.items():
            for start in range(0, len(keys), 1000):
                chunk = [{"Key": key} for key in keys[start : start + 1000]]
                response = self._call(
                    "delete_objects", bucket, chunk[0]["Key"],
                    Bucket=bucket, Delete={"Objects": chunk, "Quiet": True},
                )  # fmt: skip
                if failed := response.get("Errors"):
                    first = failed[0]
                    raise OSError(
                        f"could not delete {len(failed)} objects, e.g. s3://{bucket}/"
                        f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                    )

    def create_exclusive(self, path: str, data: bytes) -> str | None:
        """Write ``path`` only if no object is there; its new version tag, or None if one was."""
        if self.is_s3:
            return self._put_if(path, data, IfNoneMatch="*")
        os.makedirs(posixpath.dirname(path), exist_ok=True)
        staging = f"{path}.{uuid.uuid4().hex}.tmp"
        with open(staging, "wb") as file:
            file.write(data)
        try:
            os.link(staging, path)  # atomic, and fails if the name is taken
        except FileExistsError:
            return None
        finally:
            os.unlink(staging)
        return _digest(data)

    def replace_if(self, path: str, data: bytes, version: str) -> str | None:
        """Overwrite ``path`` only if it is still at ``version``; the new tag, or None if not."""
        if self.is_s3:
            return self._put_if(path, data, IfMatch=version)
        with _local_mutex(path):
            current = self.read_versioned(path)
            if current is None or current[1] != version:
                return None
            staging = f"{path}.{uuid.uuid4().hex}.tmp"
            with open(staging, "wb") as file:
                file.write(data)
            os.replace(staging, path)
        return _digest(data)

    def remove(self, path: str) -> None:
        if self.is_s3:
            bucket, key = self._split(path)
            self._call("delete_object", bucket, key, Bucket=bucket, Key=key)
            return
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(path)

    # S3 plumbing

    def _split(self, path: str) -> tuple[str, str]:
        bucket, key, _ = self.fs.split_path(path)
        return str(bucket), str(key)

    def _put_if(self, path: str, data: bytes, **condition: str) -> str | None:
        """A conditional S3 PUT: the new ETag, or None if the condition did not hold."""
        bucket, key = self._split(path)
        try:
            response = self._call(
                "put_object", bucket, key, Bucket=bucket, Key=key, Body=data, **condition
            )
        except (FileNotFoundError, FileExistsError):  # how s3fs maps 404/409 answers
            return None
        except OSError as error:
            if _precondition_failed(error):
                return None
            raise
        return str(response["ETag"])

    def _call(self, method: str, bucket: str, key: str, **kwargs: Any) -> Any:
        if method in ("put_object", "copy_object"):
            kwargs.update(self.put_arguments)
        try:
            return self.fs.call_s3(method, **kwargs)
        except PermissionError as error:
            operation = "".join(part.capitalize() for part in method.split("_"))
            raise access_denied(error, bucket, key, operation) from error

    def _pages(self, bucket: str, prefix: str, **extra: Any) -> Iterator[dict[str, Any]]:
        token: dict[str, str] = {}
        while True:
            page = self._call(
                "list_objects_v2", bucket, prefix, Bucket=bucket, Prefix=prefix, **extra, **token
            )
            yield page
            if not page.get("IsTruncated"):
                return
            token = {"ContinuationToken": page["NextContinuationToken"]}


def _s3_object(bucket: str, entry: dict[str, Any]) -> StoredObject:
    return StoredObject(
        f"{bucket}/{entry['Key']}", int(entry["Size"]), entry.get("LastModified"), entry.get("ETag")
    )


def _local_object(entry: dict[str, Any]) -> StoredObject:
    modified = entry.get("mtime")
    return StoredObject(
        entry["name"],
        int(entry.get("size") or 0),
        datetime.fromtimestamp(modified, UTC) if modified is not None else None,
    )


def _discard(file: Any) -> None:
    """Abort an unfinished upload, and mark the file closed so nothing commits it later."""
    file.discard()
    file.closed = True


def _read_body(fs: Any, body: Any) -> bytes:
    async def read() -> bytes:
        async with body:
            data: bytes = await body.read()
            return data

    result: bytes = sync(fs.loop, read)
    return result


def _precondition_failed(error: OSError) -> bool:
    cause = error.__cause__
    response = getattr(cause, "response", None) or {}
    return bool(response.get("Error", {}).get("Code") == "PreconditionFailed")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


@contextlib.contextmanager
def _local_mutex(path: str) -> Iterator[None]:
    """Serialise compare-and-swap on one local file across processes (an ``flock``).

    The lock is taken on the mutex file that is there once locked: one removed meanwhile
    by ``remove_local_leftovers`` is let go and the new one locked. Its time is set on each
    use, so the clean-up tells a mutex in use from one a killed run left.
    """
    os.makedirs(posixpath.dirname(path), exist_ok=True)
    name = f"{path}.mutex"
    while True:
        handle = open(name, "a+b")  # noqa: SIM115 - closed below, or by the with
        fcntl.flock(handle, fcntl.LOCK_EX)
        if _same_file(handle, name):
            break
        handle.close()
    with handle:
        os.utime(handle.fileno())
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _same_file(handle: Any, name: str) -> bool:
    try:
        return os.fstat(handle.fileno()).st_ino == os.stat(name).st_ino
    except FileNotFoundError:
        return False


LEFTOVER_FOLDERS = ("_staging", "_state")
"""Where local writes stage files (``*.tmp``) and lock them (``*.mutex``)."""


def remove_local_leftovers(storage: Storage, *, now: float | None = None) -> list[str]:
    """Remove the staging files and mutexes a killed local run left, older than a lease.

    A live writer renames its staging file within moments, under a lease of
    ``CTPARQUET_LOCK_TTL_SECONDS``; a file older than that belongs to no live run. A mutex
    is removed only while this process holds it, and only if unused for as long. S3 needs
    none of this: a PUT is atomic and leaves nothing behind. Returns what was removed.
    """
    if not storage.is_local:
        return []
    cutoff = (time.time() if now is None else now) - storage.settings.lock_ttl_seconds
    removed: list[str] = []
    for folder in LEFTOVER_FOLDERS:
        for parent, _, names in os.walk(storage.path(folder)):
            for name in names:
                path = os.path.join(parent, name)
                if name.endswith(".tmp") and _modified_before(path, cutoff):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                        removed.append(path)
                elif name.endswith(".mutex") and _remove_idle_mutex(path, cutoff):
                    removed.append(path)
    return removed


def _modified_before(path: str, cutoff: float) -> bool:
    try:
        return os.stat(path).st_mtime < cutoff
    except FileNotFoundError:
        return False


def _remove_idle_mutex(path: str, cutoff: float) -> bool:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # in use
        if not _same_file(handle, path) or os.fstat(handle.fileno()).st_mtime >= cutoff:
            return False
        os.unlink(path)  # a process waiting on this one sees it gone and locks a new one
        return True


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
