"""The test IAM evaluator itself: it must refuse as IAM does, or the policy tests prove nothing."""

from __future__ import annotations

import json

import pytest

from tests.fault_proxy import Request
from tests.iam import Call, calls_of, is_allowed

POLICY = {
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::b",
            "Condition": {"StringLike": {"s3:prefix": ["p/*"]}},
        },
        {"Effect": "Allow", "Action": ["s3:Get*"], "Resource": "arn:aws:s3:::b/p/*"},
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/p/secret?"},
        {
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": "k",
            "Condition": {"StringEquals": {"kms:ViaService": "s3.r.amazonaws.com"}},
        },
    ]
}


@pytest.mark.parametrize(
    ("call", "verdict"),
    [
        (Call("s3:GetObject", "arn:aws:s3:::b/p/x/y"), True),
        (Call("S3:getobject", "arn:aws:s3:::b/p/x"), True),  # actions ignore case
        (Call("s3:GetObject", "arn:aws:s3:::B/p/x"), False),  # resources do not
        (Call("s3:GetObject", "arn:aws:s3:::b/q/x"), False),
        (Call("s3:GetObject", "arn:aws:s3:::b/p/secret1"), False),  # explicit deny wins
        (Call("s3:GetObject", "arn:aws:s3:::b/p/secret12"), True),  # ? is one character
        (Call("s3:PutObject", "arn:aws:s3:::b/p/x"), False),
        (Call("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "p/a"}), True),
        (Call("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "q/"}), False),
        (Call("s3:ListBucket", "arn:aws:s3:::b"), False),  # no prefix: the condition fails
        (Call("kms:Decrypt", "k", {"kms:ViaService": "s3.r.amazonaws.com"}), True),
        (Call("kms:Decrypt", "k"), False),
    ],
)
def test_the_evaluator_decides_as_iam_does(call, verdict):
    assert is_allowed(POLICY, call) is verdict


def test_what_it_does_not_understand_fails_loudly():
    with pytest.raises(ValueError, match="NotAction"):
        is_allowed({"Statement": [{"Effect": "Allow", "NotAction": "s3:*"}]}, Call("s3:x", "r"))
    odd = {"Effect": "Allow", "Action": "*", "Resource": "*",
           "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020"}}}  # fmt: skip
    with pytest.raises(ValueError, match="DateGreaterThan"):
        is_allowed({"Statement": [odd]}, Call("s3:x", "r"))


def request(
    method: str,
    bucket: str,
    key: str = "",
    query: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    response: dict[str, str] | None = None,
) -> Request:
    return Request(method, bucket, key, query or {}, headers or {}, response or {}, body, None, 200)


def test_recorded_requests_map_to_the_authorisations_they_need():
    delete = b"<Delete><Object><Key>p/a</Key></Object><Object><Key>p/b</Key></Object></Delete>"
    copy = {"x-amz-copy-source": "/b/p/_staging/x.tmp", "x-amz-server-side-encryption": "aws:kms",
            "x-amz-server-side-encryption-aws-kms-key-id": "k"}  # fmt: skip
    cases = [
        (request("GET", "b", query={"list-type": ["2"], "prefix": ["p/"]}),
         [("s3:ListBucket", "arn:aws:s3:::b")]),
        (request("HEAD", "b"), [("s3:ListBucket", "arn:aws:s3:::b")]),
        (request("HEAD", "b", "p/x"), [("s3:GetObject", "arn:aws:s3:::b/p/x")]),
        (request("POST", "b", query={"delete": [""]}, body=delete),
         [("s3:DeleteObject", "arn:aws:s3:::b/p/a"), ("s3:DeleteObject", "arn:aws:s3:::b/p/b")]),
        (request("PUT", "b", "p/x", headers=copy),
         [("s3:GetObject", "arn:aws:s3:::b/p/_staging/x.tmp"),
          ("s3:PutObject", "arn:aws:s3:::b/p/x"),
          ("kms:GenerateDataKey", "k"), ("kms:Decrypt", "k")]),
        (request("GET", "b", "p/x", response={"x-amz-server-side-encryption-aws-kms-key-id": "t"}),
         [("s3:GetObject", "arn:aws:s3:::b/p/x"), ("kms:Decrypt", "t")]),
        (request("PUT", "b", "p/x", query={"tagging": [""]}),
         [("s3:UnmappedPUT['tagging']", "arn:aws:s3:::b/p/x")]),
        (request("POST", "", headers={"x-amz-target": "AWSGlue.CreateTable"},
                 body=json.dumps({"DatabaseName": "db", "TableInput": {"Name": "t"}}).encode()),
         [("glue:CreateTable", "arn:aws:glue:r:1:catalog"),
          ("glue:CreateTable", "arn:aws:glue:r:1:database/db"),
          ("glue:CreateTable", "arn:aws:glue:r:1:table/db/t")]),
        (request("POST", "", headers={"x-amz-target": "AWSGlue.GetDatabase"},
                 body=json.dumps({"Name": "db"}).encode()),
         [("glue:GetDatabase", "arn:aws:glue:r:1:catalog"),
          ("glue:GetDatabase", "arn:aws:glue:r:1:database/db")]),
    ]  # fmt: skip
    for recorded, expected in cases:
        assert [(c.action, c.resource) for c in calls_of(recorded, "r", "1")] == expected, recorded
