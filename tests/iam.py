"""A small IAM policy evaluator, and the IAM calls behind the S3 requests a proxy recorded.

Enough of IAM to check ``deploy/`` policies against what the code really does:
Allow/Deny statements, ``Action``/``Resource`` with ``*`` and ``?`` wildcards,
``Principal`` (for bucket policies), and the condition operators the policies
use (StringLike, StringEquals, StringNotEquals, Null, Bool). Anything else raises,
so a policy cannot pass by using what the evaluator does not understand.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree

from tests.fault_proxy import Request, operation_of

DEPLOY = Path(__file__).parents[1] / "deploy"


@dataclass(frozen=True)
class Call:
    """One IAM authorisation a request needs: action on resource, with its condition keys."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)
    request: str = ""
    """The request that needs it, for messages."""


def load_policy(name: str, values: Mapping[str, str]) -> dict[str, Any]:
    """A policy template from ``deploy/`` with its ``${PLACEHOLDERS}`` filled in."""
    text = (DEPLOY / name).read_text()
    rendered = string.Template(text).substitute(values)  # KeyError on a missing value
    policy: dict[str, Any] = json.loads(rendered)
    return policy


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@cache
def _wildcard(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", 0 if case_sensitive else re.IGNORECASE)


def _like(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    return _wildcard(pattern, case_sensitive).match(value) is not None


def _condition_holds(
    operator: str, key: str, wanted: list[str], context: Mapping[str, str]
) -> bool:
    present = {k.lower(): v for k, v in context.items()}.get(key.lower())
    if operator == "Null":
        return (present is None) == (wanted == ["true"])
    if operator == "Bool":
        return present is not None and present.lower() in [w.lower() for w in wanted]
    if operator == "StringLike":
        return present is not None and any(_like(w, present) for w in wanted)
    if operator == "StringEquals":
        return present is not None and present in wanted
    if operator == "StringNotEquals":
        return present is None or present not in wanted
    raise ValueError(f"condition operator {operator} is not understood by this evaluator")


def _applies(statement: Mapping[str, Any], call: Call, principal: str | None) -> bool:
    for unsupported in ("NotAction", "NotResource", "NotPrincipal"):
        if unsupported in statement:
            raise ValueError(f"{unsupported} is not understood by this evaluator")
    if "Principal" in statement:
        named = statement["Principal"]
        principals = ["*"] if named == "*" else _listed(named.get("AWS", []))
        if "*" not in principals and principal not in principals:
            return False
    if not any(_like(a, call.action, case_sensitive=False) for a in _listed(statement["Action"])):
        return False
    if not any(_like(r, call.resource) for r in _listed(statement.get("Resource", "*"))):
        return False
    return all(
        _condition_holds(operator, key, [str(v) for v in _listed(values)], call.context)
        for operator, keys in statement.get("Condition", {}).items()
        for key, values in keys.items()
    )


def is_allowed(policy: Mapping[str, Any], call: Call, principal: str | None = None) -> bool:
    """IAM's verdict within one policy: an explicit Deny wins, then any Allow, else denied."""
    effects = [s["Effect"] for s in policy["Statement"] if _applies(s, call, principal)]
    return "Deny" not in effects and "Allow" in effects


def denied(
    policy: Mapping[str, Any], calls: Iterable[Call], principal: str | None = None
) -> list[Call]:
    return [c for c in calls if not is_allowed(policy, c, principal)]


def allowed_actions(policy: Mapping[str, Any], service: str) -> set[str]:
    """The actions a policy's Allow statements name for ``service`` (as written)."""
    return {
        action
        for s in policy["Statement"]
        if s["Effect"] == "Allow"
        for action in _listed(s["Action"])
        if action.startswith(f"{service}:")
    }


# --- From recorded HTTP requests to IAM calls --------------------------------------------


def _object(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def calls_of(request: Request, region: str, account: str = "123456789012") -> list[Call]:
    """The IAM authorisations a request needs: S3 (path-style), or Glue/Athena (JSON)."""
    target = request.headers.get("x-amz-target")
    if target:
        return _json_protocol_calls(target, request.body, region, account)
    where = f"{request.method} /{request.bucket}/{request.key}?{'&'.join(request.query)}"
    base = {"aws:SecureTransport": "true"}
    operation = operation_of(request.method, request.query, request.headers)
    bucket_arn = f"arn:aws:s3:::{request.bucket}"
    target = _object(request.bucket, request.key)
    calls: list[Call] = []
    if not request.key:
        if operation == "LIST":
            context = {**base, "s3:prefix": request.query.get("prefix", [""])[0]}
            if "delimiter" in request.query:
                context["s3:delimiter"] = request.query["delimiter"][0]
            calls.append(Call("s3:ListBucket", bucket_arn, context, where))
        elif request.method == "HEAD":
            calls.append(Call("s3:ListBucket", bucket_arn, base, where))  # HeadBucket
        elif request.method == "POST" and "delete" in request.query:
            for key in _deleted_keys(request.body):
                calls.append(Call("s3:DeleteObject", _object(request.bucket, key), base, where))
        else:
            calls.append(Call(f"s3:Unmapped{request.method}Bucket", bucket_arn, base, where))
        return calls
    subresources = set(request.query) - {"partNumber", "uploadId", "versionId"}
    if subresources - {"uploads"}:
        return [Call(f"s3:Unmapped{request.method}{sorted(subresources)}", target, base, where)]
    sse = request.headers.get("x-amz-server-side-encryption")
    kms_key = request.headers.get("x-amz-server-side-encryption-aws-kms-key-id")
    write_context = dict(base)
    if sse:
        write_context["s3:x-amz-server-side-encryption"] = sse
    if kms_key:
        write_context["s3:x-amz-server-side-encryption-aws-kms-key-id"] = kms_key
    if request.method in ("GET", "HEAD"):
        calls.append(Call("s3:GetObject", target, base, where))
    elif operation == "COPY":
        source = unquote(request.headers["x-amz-copy-source"]).lstrip("/").split("?")[0]
        calls.append(Call("s3:GetObject", f"arn:aws:s3:::{source}", base, where))
        calls.append(Call("s3:PutObject", target, write_context, where))
    elif request.method in ("PUT", "POST"):
        calls.append(Call("s3:PutObject", target, write_context, where))
    elif request.method == "DELETE":
        action = "s3:AbortMultipartUpload" if "uploadId" in request.query else "s3:DeleteObject"
        calls.append(Call(action, target, base, where))
    via_s3 = {"kms:ViaService": f"s3.{region}.amazonaws.com"}
    if kms_key and request.method in ("PUT", "POST"):
        calls.append(Call("kms:GenerateDataKey", kms_key, via_s3, where))
        if operation == "COPY":  # the copy reads a source this pipeline wrote with the key
            calls.append(Call("kms:Decrypt", kms_key, via_s3, where))
    read_key = request.response_headers.get("x-amz-server-side-encryption-aws-kms-key-id")
    if request.method == "GET" and read_key:
        calls.append(Call("kms:Decrypt", read_key, via_s3, where))
    return calls


def _json_protocol_calls(target: str, body: bytes, region: str, account: str) -> list[Call]:
    """Glue and Athena speak JSON with the operation in ``X-Amz-Target``."""
    service, operation = target.split(".", 1)
    arguments = json.loads(body or b"{}")
    if service == "AWSGlue":
        catalog = f"arn:aws:glue:{region}:{account}:catalog"
        database = (
            arguments.get("DatabaseName")
            or arguments.get("Name")
            or arguments.get("DatabaseInput", {}).get("Name", "")
        )
        resources = [catalog, f"arn:aws:glue:{region}:{account}:database/{database}"]
        table = arguments.get("TableInput", {}).get("Name") or (
            arguments.get("Name") if "DatabaseName" in arguments else None
        )
        if table:
            resources.append(f"arn:aws:glue:{region}:{account}:table/{database}/{table}")
        return [Call(f"glue:{operation}", r, {}, target) for r in resources]
    if service == "AmazonAthena":
        workgroup = arguments.get("WorkGroup", "*")
        arn = f"arn:aws:athena:{region}:{account}:workgroup/{workgroup}"
        return [Call(f"athena:{operation}", arn, {}, target)]
    return [Call(f"unmapped:{target}", "*", {}, target)]


def _deleted_keys(body: bytes) -> list[str]:
    tree = ElementTree.fromstring(body)
    return [node.text or "" for node in tree.iter() if node.tag.rsplit("}", 1)[-1] == "Key"]


def calls_of_requests(requests: Iterable[Request], region: str) -> list[Call]:
    return [call for request in requests for call in calls_of(request, region)]
