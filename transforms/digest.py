"""CloudTrail digest files, the pure part: parse one, and say what its signature covers.

With log file validation on, CloudTrail writes every hour, per account and region, a
gzip JSON digest to ``AWSLogs/[o-ORG/]ACCOUNT/CloudTrail-Digest/REGION/YYYY/MM/DD/``
named ``ACCOUNT_CloudTrail-Digest_REGION_TRAIL_HOMEREGION_YYYYMMDDTHHMMSSZ.json.gz``.
It names every log file delivered in that hour with the hex SHA-256 of the file's
*uncompressed* content (``logFiles[].hashValue``), and the previous digest
(``previousDigestS3Object``, ``previousDigestHashValue``), so a deleted digest breaks
the chain. Log files delivered late are named by *backfill* digests, in the same
folders, whose names end ``_backfill.json.gz``; they chain among themselves.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from transforms.decode import decompress
from transforms.errors import PipelineError

AWSLOGS = "AWSLogs/"
BACKFILL_SUFFIX = "_backfill.json.gz"
REQUIRED_FIELDS = ("digestStartTime", "digestEndTime", "digestS3Bucket", "digestS3Object")


class DigestFormatError(PipelineError):
    """A digest file that is not gzip JSON of CloudTrail's digest shape."""


@dataclass(frozen=True)
class DigestLogFile:
    """One log file a digest names: where CloudTrail delivered it, and its content's hash."""

    bucket: str
    key: str
    hash_value: str


@dataclass(frozen=True)
class Digest:
    """The parts of a digest file that reconciliation needs."""

    key: str
    """Where the digest was read (a URL or path ending in its S3 key)."""
    s3_bucket: str
    s3_object: str
    start_time: str
    end_time: str
    previous_bucket: str | None
    previous_object: str | None
    previous_hash: str | None
    previous_signature: str | None
    log_files: tuple[DigestLogFile, ...]
    sha256: str
    """Hex SHA-256 of the digest's own uncompressed content (the next one names it)."""
    backfill: bool
    fingerprint: str | None = None
    """Of the public key whose private key signed the digest (``ListPublicKeys`` names it)."""


def is_backfill_digest(key: str) -> bool:
    return key.endswith(BACKFILL_SUFFIX)


def awslogs_key(key: str) -> str:
    """The part of a key or URL from ``AWSLogs/`` on: how a trail names an object anywhere.

    A digest names objects by bucket and key; the source may be a local copy or point
    below a custom prefix. From ``AWSLogs/`` on, every copy agrees.
    """
    at = key.rfind(AWSLOGS)
    return key if at < 0 else key[at:]


def parse_digest(key: str, data: bytes) -> Digest:
    """Read a digest file's bytes (gzip JSON); raise ``DigestFormatError`` naming ``key``."""
    document, problem = decompress(data)
    if problem:
        raise DigestFormatError(f"digest is not readable gzip ({problem})", key=key)
    try:
        found = json.loads(document)
    except (ValueError, UnicodeDecodeError) as error:
        raise DigestFormatError(f"digest is not JSON ({error})", key=key) from None
    if not isinstance(found, dict):
        raise DigestFormatError("digest is not a JSON object", key=key)
    missing = [name for name in REQUIRED_FIELDS if not isinstance(found.get(name), str)]
    if missing:
        raise DigestFormatError(f"digest has no {', '.join(missing)}", key=key)
    log_files = found.get("logFiles")
    log_files = [] if log_files is None else log_files  # an hour with no log files
    if not isinstance(log_files, list):
        raise DigestFormatError("digest's logFiles is not a list", key=key)
    return Digest(
        key=key,
        s3_bucket=found["digestS3Bucket"],
        s3_object=found["digestS3Object"],
        start_time=found["digestStartTime"],
        end_time=found["digestEndTime"],
        previous_bucket=_text(found.get("previousDigestS3Bucket")),
        previous_object=_text(found.get("previousDigestS3Object")),
        previous_hash=_text(found.get("previousDigestHashValue")),
        previous_signature=_text(found.get("previousDigestSignature")),
        log_files=tuple(_log_file(entry, key) for entry in log_files),
        sha256=hashlib.sha256(document).hexdigest(),
        backfill=is_backfill_digest(key),
        fingerprint=_text(found.get("digestPublicKeyFingerprint")),
    )


def string_to_sign(digest: Digest) -> bytes:
    """What CloudTrail signs (SHA256withRSA) for a digest, as ``validate-logs`` rebuilds it."""
    previous = digest.previous_signature if digest.previous_signature is not None else "null"
    return (
        f"{digest.end_time}\n{digest.s3_bucket}/{digest.s3_object}\n{digest.sha256}\n{previous}"
    ).encode()


def signature_valid(digest: Digest, signature_hex: str, public_key_der: bytes) -> bool:
    """Does ``signature_hex`` (the digest object's ``x-amz-meta-signature``) verify, by
    SHA256withRSA under the PKCS#1 DER public key ``ListPublicKeys`` returned?"""
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415 - only with --signatures
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: PLC0415

    try:
        key = serialization.load_der_public_key(public_key_der)
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        return False
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    try:
        key.verify(signature, string_to_sign(digest), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def _log_file(entry: Any, key: str) -> DigestLogFile:
    if not isinstance(entry, dict) or not all(
        isinstance(entry.get(name), str) for name in ("s3Bucket", "s3Object", "hashValue")
    ):
        raise DigestFormatError("a logFiles entry lacks s3Bucket, s3Object or hashValue", key=key)
    return DigestLogFile(entry["s3Bucket"], entry["s3Object"], entry["hashValue"].lower())


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
