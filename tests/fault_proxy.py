"""A loopback HTTP proxy in front of the moto server: injects S3 faults, records every request.

Clients reach it exactly as they reach AWS (``AWS_ENDPOINT_URL``), so what is
tested is the real retry behaviour of botocore/aiobotocore inside s3fs. Faults
are deterministic per request (method, path, query, range): a request chosen to
fail fails its first one or two attempts and then goes through, so a client that
retries loses nothing and one that does not, fails. Kinds of fault:

- ``slowdown``: 503 SlowDown (S3 throttling), before the request reaches S3;
- ``internal``: 500 InternalError, before the request reaches S3;
- ``unavailable``: 503 ServiceUnavailable, before the request reaches S3;
- ``lost``: the request reaches S3 and takes effect, then the client gets a 500;
- ``reset``: the connection is closed with no response at all.

Every request is recorded (method, bucket, key, query, a few headers, fault,
status) for the IAM test to check against the policy.
"""

from __future__ import annotations

import hashlib
import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

FAULT_KINDS = ("slowdown", "internal", "unavailable", "lost", "reset")
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
}
_KEPT_HEADERS = (
    "x-amz-copy-source",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-bucket-key-enabled",
    "x-amz-target",
    "range",
    "authorization",  # its Credential= names the access key that signed the request
)
_ERRORS = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "internal": (500, "InternalError", "We encountered an internal error. Please try again."),
    "unavailable": (503, "ServiceUnavailable", "Service is unable to handle request."),
    "lost": (500, "InternalError", "We encountered an internal error. Please try again."),
}


@dataclass(frozen=True)
class FaultPlan:
    """Which requests fail, how, and how many times (deterministic, from a seed).

    The first request of each operation (LIST, GET, HEAD, PUT, COPY, POST, DELETE)
    fails once, each operation with the next kind of fault, so every operation meets
    a fault and every kind is used; other requests fail at ``rate``, up to
    ``max_failures`` times in a row.
    """

    rate: float = 0.1
    """Share of the other distinct requests that fail at first."""
    kinds: tuple[str, ...] = FAULT_KINDS
    max_failures: int = 2
    """Attempts of a chosen request that fail before it goes through (1..this)."""
    seed: str = "ctparquet"
    always: bool = False
    """Fail every attempt of a chosen request: a fault that outlasts any retry policy."""
    first_of_each: bool = True
    methods: tuple[str, ...] = ("GET", "HEAD", "PUT", "POST", "DELETE")
    """Only requests of these HTTP methods are chosen."""
    under: str = "/"
    """Only requests whose path starts with this (``/bucket/prefix``) are chosen."""

    def faults(self, identity: str, operation: str, first: bool) -> list[str]:
        """The faults the first attempts of a request meet, in order."""
        method, path = identity.split(" ", 1)
        if method not in self.methods or not path.startswith(self.under):
            return []
        draw = hashlib.sha256(f"{self.seed}\0{identity}".encode()).digest()
        if first and self.first_of_each:
            start, count = OPERATIONS.index(operation), 1
        elif draw[0] / 256 < self.rate:
            start, count = draw[2], 1 + draw[1] % self.max_failures
        else:
            return []
        if self.always:
            count = 1000
        return [self.kinds[(start + i) % len(self.kinds)] for i in range(count)]


OPERATIONS = ("LIST", "GET", "HEAD", "PUT", "COPY", "POST", "DELETE")


def operation_of(method: str, query: dict[str, list[str]], headers: dict[str, str]) -> str:
    if method == "GET" and "list-type" in query:
        return "LIST"
    if method == "PUT" and "x-amz-copy-source" in headers:
        return "COPY"
    return method


@dataclass(frozen=True)
class Request:
    """One request as the proxy saw it (path-style S3 addressing)."""

    method: str
    bucket: str
    key: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    response_headers: dict[str, str]
    body: bytes
    fault: str | None
    status: int | None


@dataclass
class FaultProxy:
    url: str
    plan: FaultPlan | None
    requests: list[Request] = field(default_factory=list)
    _attempts: dict[str, int] = field(default_factory=dict)
    _first: dict[str, str] = field(default_factory=dict)
    """Operation -> the identity of its first request."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_fault(self, identity: str, operation: str) -> str | None:
        if self.plan is None:
            return None
        with self._lock:
            attempt = self._attempts.get(identity, 0)
            self._attempts[identity] = attempt + 1
            first = self._first.setdefault(operation, identity) == identity
        faults = self.plan.faults(identity, operation, first)
        return faults[attempt] if attempt < len(faults) else None

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    @property
    def faults_injected(self) -> list[Request]:
        return [r for r in self.requests if r.fault is not None]


def _handler(proxy: FaultProxy, upstream: tuple[str, int]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: the test reads proxy.requests instead

        def _body(self) -> bytes | None:
            """The request's body; None if the client went away before sending all of it."""
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks: list[bytes] = []
                while True:
                    line = self.rfile.readline()
                    if not line.strip():
                        return None
                    size = int(line.strip().split(b";")[0], 16)
                    if size == 0:
                        while self.rfile.readline().strip():
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    if len(chunks[-1]) < size:
                        return None
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            return body if len(body) == length else None

        def _handle(self) -> None:
            body = self._body()
            if body is None:
                # S3 never stores a request whose body stopped short (a client killed while
                # sending): forwarding the part that came would store a truncated object
                # under the checksum of the whole.
                self.close_connection = True
                return
            split = urlsplit(self.path)
            parts = unquote(split.path).lstrip("/").split("/", 1)
            bucket, key = parts[0], parts[1] if len(parts) > 1 else ""
            headers = {k.lower(): v for k, v in self.headers.items()}
            identity = f"{self.command} {split.path}?{split.query} {headers.get('range', '')}"
            if self.command == "POST":  # e.g. DeleteObjects: the keys are in the body
                identity += hashlib.sha256(body).hexdigest()
            query = parse_qs(split.query, keep_blank_values=True)
            fault = proxy.next_fault(identity, operation_of(self.command, query, headers))
            status: int | None = None
            response_headers: dict[str, str] = {}

            def record() -> None:
                proxy.record(
                    Request(
                        method=self.command,
                        bucket=bucket,
                        key=key,
                        query=query,
                        headers={k: headers[k] for k in _KEPT_HEADERS if k in headers},
                        response_headers=response_headers,
                        body=body if self.command == "POST" else b"",
                        fault=fault,
                        status=status,
                    )
                )

            if fault == "reset":
                self.close_connection = True
            elif fault in ("slowdown", "internal", "unavailable"):
                status = self._error(fault)
            else:
                status, response_headers, payload = self._forward(body)
                if fault == "lost":
                    status = self._error(fault)
                else:
                    # Recorded before the client has its answer: a test that reads the
                    # requests after a call returns sees every request that call made.
                    record()
                    self._reply(status, response_headers, payload)
                    return
            record()

        def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
            connection = http.client.HTTPConnection(*upstream, timeout=60)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                if body or self.command in ("PUT", "POST"):
                    headers["Content-Length"] = str(len(body))
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                kept = {
                    k.lower(): v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP
                }
                return response.status, kept, payload
            finally:
                connection.close()

        def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name != "content-length" or self.command == "HEAD":
                    self.send_header(name, value)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def _error(self, fault: str) -> int:
            status, code, message = _ERRORS[fault]
            payload = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                f"<Error><Code>{code}</Code><Message>{message}</Message>"
                "<RequestId>FAULTPROXY</RequestId></Error>"
            ).encode()
            self._reply(status, {"content-type": "application/xml"}, payload)
            return status

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle  # noqa: N815

    return Handler


@contextmanager
def fault_proxy(upstream_url: str, plan: FaultPlan | None = None) -> Iterator[FaultProxy]:
    """Serve a proxy to ``upstream_url`` on a free loopback port while the block runs."""
    upstream = urlsplit(upstream_url)
    assert upstream.hostname and upstream.port
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    proxy = FaultProxy(f"http://127.0.0.1:{server.server_address[1]}", plan)
    server.RequestHandlerClass = _handler(proxy, (upstream.hostname, upstream.port))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="fault-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def s3_through_proxy(endpoint_url: str, plan: FaultPlan | None = None) -> Iterator[FaultProxy]:
    """Point every new S3 client (``AWS_ENDPOINT_URL``) at a proxy to ``endpoint_url``."""
    import os

    import s3fs

    saved = os.environ.get("AWS_ENDPOINT_URL")
    with fault_proxy(endpoint_url, plan) as proxy:
        os.environ["AWS_ENDPOINT_URL"] = proxy.url
        s3fs.S3FileSystem.clear_instance_cache()
        try:
            yield proxy
        finally:
            os.environ["AWS_ENDPOINT_URL"] = saved or endpoint_url
            s3fs.S3FileSystem.clear_instance_cache()
