"""A seeded generator of realistic CloudTrail log files, for tests and benchmarks.

``generate_corpus`` writes gzip JSON objects laid out as CloudTrail delivers them
(API events, digests and Insights, with and without an organisation prefix) and
returns what a correct pipeline must produce from them: every distinct event with
its exact record bytes, its event-time partition and its free-form payload texts.
Real logs are too small and too uniform to exercise the edge cases (every identity
type, escapes and number forms that must survive byte for byte, case-twin keys,
types that change between events, late and re-delivered events, fields CloudTrail
does not have yet), and too slow to scale to a million events; this makes both,
deterministically: the same seed and arguments give byte-identical files.

Records are built as JSON text from string templates rather than ``json.dumps``:
it is several times faster, and it writes forms ``json.dumps`` cannot (``1.0``,
``1e-07``, ``\\/``, escaped and raw non-ASCII side by side).

Run ``python -m tests.corpus OUT --events N`` to write a corpus and see its size and rate.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from itertools import accumulate
from pathlib import Path
from random import Random
from typing import Any

PAYLOAD_KEYS = (
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "serviceEventDetails",
    "edgeDeviceDetails",
    "insightDetails",
)
"""The free-form fields kept as JSON text."""


# --- What the generator returns ---------------------------------------------------------


@dataclass(frozen=True)
class ExpectedEvent:
    """One API event as the table must hold it.

    ``record`` and ``payload_text`` are derived from ``record_text`` on first use
    (and cached): a million parsed records would not fit in a benchmark's memory.
    """

    event_id: str
    record_text: bytes
    """The exact JSON bytes of the record as written in its (first) file."""
    partition: str
    """``region=R/year=Y/month=MM/day=DD`` from awsRegion and eventTime, not the folder date."""

    @cached_property
    def record(self) -> dict[str, Any]:
        """``json.loads(record_text)``."""
        record: dict[str, Any] = json.loads(self.record_text)
        return record

    @cached_property
    def payload_text(self) -> dict[str, str | None]:
        """Per payload key: its JSON text as written; a string's content; None if null/absent."""
        return top_level_texts(self.record_text, PAYLOAD_KEYS)


@dataclass
class Corpus:
    """A generated corpus on disk and the facts a test checks the table against."""

    root: Path
    """The folder holding ``AWSLogs/``."""
    events: dict[str, ExpectedEvent]
    """Every distinct API event, by eventID, in eventTime order."""
    event_objects: list[str]
    digest_objects: list[str]
    insight_objects: list[str]
    duplicate_event_ids: set[str]
    """Events delivered in two different files (same bytes)."""
    late_event_ids: set[str]
    """Events delivered in the folder of the day after their eventTime."""
    unknown_field_event_ids: set[str]
    """Events carrying fields CloudTrail's schema does not have."""
    total_records: int
    """Records written across all event objects, duplicates included."""


# --- Vocabulary ------------------------------------------------------------------------

_HEX = "0123456789abcdef"
_UPPER_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_EVENT_VERSIONS = ("1.05", "1.06", "1.07", "1.08", "1.09", "1.10", "1.11")
_EVENT_VERSION_WEIGHTS = (3, 2, 3, 45, 30, 12, 5)
_TLS_FROM = 3  # tlsDetails appear from eventVersion 1.08 on.

_TLS = (
    ("TLSv1.3", "TLS_AES_128_GCM_SHA256"),
    ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"),
    ("TLSv1.3", "TLS_AES_256_GCM_SHA384"),
)

_SDK_AGENTS = (
    "aws-cli/2.15.10 Python/3.11.6 Linux/6.5.0-1014-aws exe/x86_64.ubuntu.22 prompt/off "
    "command/ec2.describe-instances",
    "Boto3/1.34.11 md/Botocore#1.34.11 ua/2.0 os/linux#6.5.0-1014-aws md/arch#x86_64 "
    "lang/python#3.11.6 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.11",
    "aws-sdk-go-v2/1.24.0 os/linux lang/go#1.21.5 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.141.0",
    "aws-sdk-java/2.21.46 Linux/5.10.201-191.748.amzn2.x86_64 "
    "OpenJDK_64-Bit_Server_VM/17.0.9+8-LTS Java/17.0.9 vendor/Amazon.com_Inc. io/sync http/Apache "
    "cfg/retry-mode/legacy",
    "APN/1.0 HashiCorp/1.0 Terraform/1.6.6 (+https://www.terraform.io) "
    "terraform-provider-aws/5.31.0 (+https://registry.terraform.io/providers/hashicorp/aws) "
    "aws-sdk-go/1.49.8 (go1.21.5; linux; amd64)",
    "aws-sdk-js/3.484.0 ua/2.0 os/linux#5.10.205-195.804.amzn2.x86_64 lang/js md/nodejs#20.10.0 "
    "api/s3#3.484.0 exec-env/AWS_Lambda_nodejs20.x",
)
_CONSOLE_AGENTS = (
    "AWS Internal",
    "[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.488 Linux/5.4.247-169.350.amzn2int.x86_64 "
    "OpenJDK_64-Bit_Server_VM/25.372-b08 java/1.8.0_372 vendor/Oracle_Corporation "
    "cfg/retry-mode/standard]",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
)
_CALLING_SERVICES = (
    "cloudformation.amazonaws.com",
    "autoscaling.amazonaws.com",
    "config.amazonaws.com",
    "lambda.amazonaws.com",
    "secretsmanager.amazonaws.com",
    "elasticloadbalancing.amazonaws.com",
    "inspector2.amazonaws.com",
)
_USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "ci-deployer", "terraform")
_ROLES = (
    "AdminRole",
    "ReadOnly",
    "OrganizationAccountAccessRole",
    "AWSReservedSSO_AdministratorAccess_2f1e0c1c3d4b5a69",
    "lambda-exec-role",
    "eks-node-role",
    "GitHubActionsDeploy",
)
_ERRORS = (
    ("AccessDenied", "Access Denied"),
    ("Client.UnauthorizedOperation", "You are not authorized to perform this operation."),
    ("ThrottlingException", "Rate exceeded"),
    ("NoSuchKey", "The specified key does not exist."),
    ("ResourceNotFoundException", "Requested resource not found"),
    (
        "ValidationException",
        "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: "
        "Member must not be null",
    ),
)

# Kinds of userIdentity. Each is also a feature that can be forced onto one event.
IDENTITY_KINDS = (
    "Root",
    "RootAssumed",
    "IAMUser",
    "AssumedRole",
    "AssumedRoleSourceIdentity",
    "AssumedRoleEc2",
    "AssumedRoleWebIdentity",
    "AssumedRoleInScopeOf",
    "FederatedUser",
    "AWSAccount",
    "AWSService",
    "AWSServiceNoType",
    "IdentityCenterUser",
    "SAMLUser",
    "WebIdentityUser",
    "Unknown",
    "Anonymous",
)
_CALLERS: dict[str, tuple[tuple[str, float], ...]] = {
    # An API's kind of caller -> identity kinds and their weights.
    "any": (
        ("AssumedRole", 40),
        ("AssumedRoleSourceIdentity", 3),
        ("AssumedRoleEc2", 5),
        ("AssumedRoleWebIdentity", 3),
        ("AssumedRoleInScopeOf", 2),
        ("IAMUser", 18),
        ("AWSService", 12),
        ("Root", 2),
        ("RootAssumed", 0.5),
        ("FederatedUser", 3),
        ("AWSAccount", 4),
        ("IdentityCenterUser", 1),
        ("Unknown", 1),
    ),
    "console": (("Root", 15), ("IAMUser", 50), ("AssumedRole", 35)),
    "saml": (("SAMLUser", 1),),
    "webid": (("WebIdentityUser", 1),),
    "service": (("AWSServiceNoType", 7), ("AWSService", 3)),
    "identity-center": (("IdentityCenterUser", 8), ("Unknown", 2)),
}
_HUMAN_KINDS = frozenset(
    ("Root", "IAMUser", "AssumedRole", "AssumedRoleSourceIdentity", "FederatedUser")
)

UNKNOWN_FIELDS = (
    ("top", '"newFeatureFlag":{"x":1}'),
    ("top", '"futureField":"v"'),
    ("userIdentity", '"newIdentityField":"abc"'),
)
"""Fields CloudTrail does not write (yet), added to ``unknown_field_rate`` of events in turn."""


# --- Small random values ---------------------------------------------------------------


def _uuid(rng: Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _chars(rng: Random, alphabet: str, n: int) -> str:
    return "".join(rng.choices(alphabet, k=n))


def _hex(rng: Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def _aws_date(when: datetime) -> str:
    """The ``Jan 5, 2024, 12:55:24 PM`` form STS and IAM use in responses."""
    hour = when.hour % 12 or 12
    half = "AM" if when.hour < 12 else "PM"
    return (
        f"{_MONTHS[when.month - 1]} {when.day}, {when.year}, "
        f"{hour}:{when.minute:02d}:{when.second:02d} {half}"
    )


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Account:
    """One AWS account of the corpus and the names its events refer to."""

    id: str
    org_layout: bool
    trail: str
    log_bucket: str
    buckets: tuple[str, ...]
    kms_keys: tuple[str, ...]
    functions: tuple[str, ...]
    tables: tuple[str, ...]
    ips: tuple[str, ...]
    other_account: str


# --- Payloads: (requestParameters, responseElements, additionalEventData, resources) ----

Payload = tuple[str, str, str | None, str | None]
_NULL = "null"


def _s3_object(g: _Gen, a: _Account, region: str) -> tuple[str, str, str]:
    bucket = g.rng.choice(a.buckets)
    key = f"{g.rng.choice(('data', 'logs', 'exports', 'tmp'))}/{_hex(g.rng, 8)}.parquet"
    return bucket, key, f"{bucket}.s3.{region}.amazonaws.com"


def _s3_additional(g: _Gen, bytes_in: str, bytes_out: int) -> str:
    return (
        f'{{"SignatureVersion":"SigV4","CipherSuite":"ECDHE-RSA-AES128-GCM-SHA256",'
        f'"bytesTransferredIn":{bytes_in},"AuthenticationMethod":"AuthHeader",'
        f'"x-amz-id-2":"{_chars(g.rng, _ALNUM, 56)}=","bytesTransferredOut":{bytes_out}}}'
    )


def _s3_object_resources(g: _Gen, a: _Account, bucket: str, key: str) -> str:
    # CloudTrail often leaves accountId off the object (its owner may not be the bucket's).
    no_owner = g.forced("object_no_account") or g.rng.random() < 0.5
    owner = "" if no_owner else f'"accountId":"{a.id}",'
    return (
        f'[{{{owner}"type":"AWS::S3::Object","ARN":"arn:aws:s3:::{bucket}/{key}"}},'
        f'{{"accountId":"{a.id}","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::{bucket}"}}]'
    )


def _s3_get_object(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    bucket, key, host = _s3_object(g, a, region)
    bytes_in = "0.0" if g.forced("bytes_float") or g.rng.random() < 0.3 else "0"
    return (
        f'{{"bucketName":"{bucket}","Host":"{host}","key":"{key}"}}',
        _NULL,
        _s3_additional(g, bytes_in, g.rng.randrange(200, 5_000_000)),
        _s3_object_resources(g, a, bucket, key),
    )


def _s3_put_object(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    bucket, key, host = _s3_object(g, a, region)
    size = g.rng.randrange(1, 20_000_000)
    response = '{"x-amz-server-side-encryption":"AES256"}' if g.rng.random() < 0.6 else _NULL
    return (
        f'{{"bucketName":"{bucket}","Host":"{host}","key":"{key}",'
        f'"x-amz-server-side-encryption":"AES256"}}',
        response,
        _s3_additional(g, str(size), 0),
        _s3_object_resources(g, a, bucket, key),
    )


def _s3_delete_object(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    bucket, key, host = _s3_object(g, a, region)
    return (
        f'{{"bucketName":"{bucket}","Host":"{host}","key":"{key}"}}',
        _NULL,
        _s3_additional(g, "0", 0),
        _s3_object_resources(g, a, bucket, key),
    )


def _s3_list_buckets(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    return '{"Host":"s3.amazonaws.com"}', _NULL, _s3_additional(g, "0", 1843), None


def _bucket_resource(a: _Account, bucket: str) -> str:
    return f'[{{"accountId":"{a.id}","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::{bucket}"}}]'


def _s3_get_bucket_acl(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    bucket = g.rng.choice(a.buckets)
    request = f'{{"bucketName":"{bucket}","Host":"{bucket}.s3.{region}.amazonaws.com","acl":""}}'
    return request, _NULL, _s3_additional(g, "0", 512), _bucket_resource(a, bucket)


def _s3_put_bucket_policy(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    bucket = g.rng.choice(a.buckets)
    request = (
        f'{{"bucketPolicy":{{"Version":"2012-10-17","Statement":[{{"Sid":"DenyInsecure",'
        f'"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::{bucket}",'
        f'"arn:aws:s3:::{bucket}/*"],"Condition":{{"Bool":{{"aws:SecureTransport":"false"}}}}}}]}},'
        f'"bucketName":"{bucket}","Host":"{bucket}.s3.{region}.amazonaws.com","policy":""}}'
    )
    return request, _NULL, _s3_additional(g, "412", 0), _bucket_resource(a, bucket)


def _ec2_describe_instances(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    # maxResults is an int in some events and a string in others, as in real logs.
    roll = g.rng.random()
    if g.forced("max_results_str") or (roll < 0.15 and not g.forced("max_results_int")):
        extra = ',"maxResults":"1000"'
    elif g.forced("max_results_int") or roll < 0.4:
        extra = ',"maxResults":5'
    else:
        extra = ""
    return f'{{"instancesSet":{{}},"filterSet":{{}}{extra}}}', _NULL, None, None


def _instance_item(g: _Gen, a: _Account, region: str, launch_ms: int) -> str:
    instance = f"i-{_hex(g.rng, 17)}"
    ip = f"10.{g.rng.randrange(256)}.{g.rng.randrange(256)}.{g.rng.randrange(1, 255)}"
    return (
        f'{{"instanceId":"{instance}","imageId":"ami-0c7217cdde317cfec",'
        f'"currentInstanceBootMode":"legacy-bios","instanceState":{{"code":0,"name":"pending"}},'
        f'"privateDnsName":"ip-{ip.replace(".", "-")}.{region}.compute.internal",'
        f'"amiLaunchIndex":0,'
        f'"productCodes":{{}},"instanceType":"t3.micro","launchTime":{launch_ms},'
        f'"placement":{{"availabilityZone":"{region}a","tenancy":"default"}},'
        f'"monitoring":{{"state":"disabled"}},"subnetId":"subnet-{_hex(g.rng, 17)}",'
        f'"vpcId":"vpc-{_hex(g.rng, 17)}","privateIpAddress":"{ip}","stateReason":'
        f'{{"code":"pending","message":"pending"}},"architecture":"x86_64","rootDeviceType":"ebs",'
        f'"rootDeviceName":"/dev/xvda","blockDeviceMapping":{{}},"virtualizationType":"hvm",'
        f'"hypervisor":"xen","groupSet":{{"items":[{{"groupId":"sg-{_hex(g.rng, 17)}",'
        f'"groupName":"default"}}]}},"sourceDestCheck":true,"networkInterfaceSet":{{"items":[]}},'
        f'"ebsOptimized":false,"enaSupport":true,"cpuOptions":{{"coreCount":1,"threadsPerCore":2}},'
        f'"capacityReservationSpecification":{{"capacityReservationPreference":"open"}},'
        f'"enclaveOptions":{{"enabled":false}},"metadataOptions":{{"state":"pending",'
        f'"httpTokens":"required","httpPutResponseHopLimit":2,"httpEndpoint":"enabled"}},'
        f'"maintenanceOptions":{{"autoRecovery":"default"}}}}'
    )


def _ec2_run_instances(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    count = 200 if g.forced("large_response") else g.rng.choice((1, 1, 1, 2, 3))
    launch_ms = int(datetime.fromisoformat(ts).timestamp()) * 1000
    items = ",".join(_instance_item(g, a, region, launch_ms) for _ in range(count))
    request = (
        f'{{"instancesSet":{{"items":[{{"imageId":"ami-0c7217cdde317cfec","minCount":{count},'
        f'"maxCount":{count}}}]}},"instanceType":"t3.micro","blockDeviceMapping":{{}},'
        f'"monitoring":{{"enabled":false}},"disableApiTermination":false,'
        f'"disableApiStop":false,"clientToken":"{_uuid(g.rng)}","tagSpecificationSet":{{"items":'
        f'[{{"resourceType":"instance","tags":[{{"key":"Name","value":"web"}}]}}]}}}}'
    )
    response = (
        f'{{"requestId":"{_uuid(g.rng)}","reservationId":"r-{_hex(g.rng, 17)}",'
        f'"ownerId":"{a.id}","groupSet":{{}},"instancesSet":{{"items":[{items}]}}}}'
    )
    return request, response, None, None


def _ec2_terminate_instances(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    instance = f"i-{_hex(g.rng, 17)}"
    return (
        f'{{"instancesSet":{{"items":[{{"instanceId":"{instance}"}}]}}}}',
        f'{{"requestId":"{_uuid(g.rng)}","instancesSet":{{"items":[{{"instanceId":"{instance}",'
        f'"currentState":{{"code":32,"name":"shutting-down"}},'
        f'"previousState":{{"code":16,"name":"running"}}}}]}}}}',
        None,
        None,
    )


def _ec2_describe_security_groups(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    return '{"securityGroupSet":{},"securityGroupIdSet":{},"filterSet":{}}', _NULL, None, None


def _ec2_authorize_ingress(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    group = f"sg-{_hex(g.rng, 17)}"
    return (
        f'{{"groupId":"{group}","ipPermissions":{{"items":[{{"ipProtocol":"tcp","fromPort":443,'
        f'"toPort":443,"groups":{{}},"ipRanges":{{"items":[{{"cidrIp":"0.0.0.0/0"}}]}},'
        f'"ipv6Ranges":{{}},"prefixListIds":{{}}}}]}}}}',
        f'{{"requestId":"{_uuid(g.rng)}","_return":true,"securityGroupRuleSet":{{"items":'
        f'[{{"groupOwnerId":"{a.id}","groupId":"{group}","securityGroupRuleId":'
        f'"sgr-{_hex(g.rng, 17)}","isEgress":false,"ipProtocol":"tcp","fromPort":443,'
        f'"toPort":443,"cidrIpv4":"0.0.0.0/0"}}]}}}}',
        None,
        None,
    )


def _ec2_create_tags(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    return (
        f'{{"resourcesSet":{{"items":[{{"resourceId":"i-{_hex(g.rng, 17)}"}}]}},'
        f'"tagSet":{{"items":[{{"key":"owner","value":"{g.rng.choice(_USERS)}"}}]}}}}',
        f'{{"requestId":"{_uuid(g.rng)}","_return":true}}',
        None,
        None,
    )


def _ec2_describe_volumes(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    return '{"volumeSet":{},"filterSet":{}}', _NULL, None, None


def _iam_create_user(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    user = f"{g.rng.choice(_USERS)}-{_hex(g.rng, 4)}"
    created = _aws_date(datetime.fromisoformat(ts))
    return (
        f'{{"userName":"{user}"}}',
        f'{{"user":{{"path":"/","userName":"{user}",'
        f'"userId":"AIDA{_chars(g.rng, _UPPER_ALNUM, 17)}",'
        f'"arn":"arn:aws:iam::{a.id}:user/{user}","createDate":"{created}"}}}}',
        None,
        None,
    )


def _iam_attach_role_policy(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    policy = g.rng.choice(("ReadOnlyAccess", "AmazonS3FullAccess", "AdministratorAccess"))
    return (
        f'{{"roleName":"{g.rng.choice(_ROLES)}","policyArn":"arn:aws:iam::aws:policy/{policy}"}}',
        _NULL,
        None,
        None,
    )


def _iam_get_role(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    return f'{{"roleName":"{g.rng.choice(_ROLES)}"}}', _NULL, None, None


def _iam_list_roles(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    return '{"maxItems":1000}' if g.rng.random() < 0.5 else _NULL, _NULL, None, None


def _policy_document(g: _Gen, statements: int) -> str:
    """An IAM policy as CloudTrail logs it: pretty-printed JSON inside a JSON string."""
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": f"Stmt{i}",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
                "Resource": f"arn:aws:s3:::bucket-{_hex(g.rng, 12)}/prefix/{i}/*",
                "Condition": {"IpAddress": {"aws:SourceIp": f"10.{i % 256}.0.0/16"}},
            }
            for i in range(statements)
        ],
    }
    return json.dumps(json.dumps(document, indent=4))


def _iam_put_role_policy(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    statements = 600 if g.forced("large_policy") else g.rng.randrange(1, 4)
    return (
        f'{{"roleName":"{g.rng.choice(_ROLES)}","policyName":"inline-{_hex(g.rng, 6)}",'
        f'"policyDocument":{_policy_document(g, statements)}}}',
        _NULL,
        None,
        None,
    )


def _iam_create_access_key(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    user = g.rng.choice(_USERS)
    created = _aws_date(datetime.fromisoformat(ts))
    return (
        f'{{"userName":"{user}"}}',
        f'{{"accessKey":{{"accessKeyId":"AKIA{_chars(g.rng, _UPPER_ALNUM, 16)}","status":"Active",'
        f'"userName":"{user}","createDate":"{created}"}}}}',
        None,
        None,
    )


def _iam_list_attached_role_policies(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    return f'{{"roleName":"{g.rng.choice(_ROLES)}"}}', _NULL, None, None


def _credentials(g: _Gen, ts: str) -> str:
    expires = _aws_date(datetime.fromisoformat(ts) + timedelta(hours=1))
    return (
        f'"credentials":{{"accessKeyId":"ASIA{_chars(g.rng, _UPPER_ALNUM, 16)}",'
        f'"sessionToken":"IQoJb3JpZ2luX2VjE{_chars(g.rng, _ALNUM, 180)}",'
        f'"expiration":"{expires}"}}'
    )


def _sts_assume_role(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    role = g.rng.choice(_ROLES)
    session = f"{g.rng.choice(_USERS)}-{g.rng.randrange(10**9, 10**10)}"
    role_id = f"AROA{_chars(g.rng, _UPPER_ALNUM, 17)}"
    return (
        f'{{"roleArn":"arn:aws:iam::{a.id}:role/{role}","roleSessionName":"{session}",'
        f'"durationSeconds":3600}}',
        f'{{{_credentials(g, ts)},"assumedRoleUser":{{"assumedRoleId":"{role_id}:{session}",'
        f'"arn":"arn:aws:sts::{a.id}:assumed-role/{role}/{session}"}}}}',
        None,
        f'[{{"accountId":"{a.id}","type":"AWS::IAM::Role","ARN":"arn:aws:iam::{a.id}:role/{role}"}}]',
    )


def _sts_get_caller_identity(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    return _NULL, _NULL, None, None


def _sts_assume_role_with_web_identity(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    session = f"botocore-session-{g.rng.randrange(10**9, 10**10)}"
    return (
        f'{{"roleArn":"arn:aws:iam::{a.id}:role/GitHubActionsDeploy","roleSessionName":"{session}",'
        f'"durationSeconds":3600}}',
        f"{{{_credentials(g, ts)},"
        f'"subjectFromWebIdentityToken":"repo:example/app:ref:refs/heads/main",'
        f'"assumedRoleUser":{{"assumedRoleId":"AROA{_chars(g.rng, _UPPER_ALNUM, 17)}:{session}",'
        f'"arn":"arn:aws:sts::{a.id}:assumed-role/GitHubActionsDeploy/{session}"}},'
        f'"provider":"arn:aws:iam::{a.id}:oidc-provider/token.actions.githubusercontent.com",'
        f'"audience":"sts.amazonaws.com"}}',
        None,
        None,
    )


def _sts_assume_role_with_saml(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    return (
        f'{{"sAMLAssertionID":"_{_hex(g.rng, 32)}","roleSessionName":"alice@example.com",'
        f'"principalTags":{{"team":"platform"}},"durationSeconds":3600,'
        f'"roleArn":"arn:aws:iam::{a.id}:role/AdminRole",'
        f'"principalArn":"arn:aws:iam::{a.id}:saml-provider/Okta"}}',
        f'{{{_credentials(g, ts)},"assumedRoleUser":{{"assumedRoleId":"AROA'
        f'{_chars(g.rng, _UPPER_ALNUM, 17)}:alice@example.com","arn":"arn:aws:sts::{a.id}:'
        f'assumed-role/AdminRole/alice@example.com"}},"subject":"alice@example.com",'
        f'"subjectType":"persistent","issuer":"http://www.okta.com/exk1234567890",'
        f'"audience":"https://signin.aws.amazon.com/saml",'
        f'"nameQualifier":"{_chars(g.rng, _ALNUM, 27)}="}}',
        None,
        None,
    )


def _sts_get_session_token(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    return '{"durationSeconds":43200}', f"{{{_credentials(g, ts)}}}", None, None


def _kms_key_resource(a: _Account, key: str) -> str:
    return f'[{{"accountId":"{a.id}","type":"AWS::KMS::Key","ARN":"{key}"}}]'


def _kms_decrypt(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    key = g.rng.choice(a.kms_keys).replace("REGION", region)
    function = f"arn:aws:lambda:{region}:{a.id}:function:{g.rng.choice(a.functions)}"
    context = f'{{"aws:lambda:FunctionArn":"{function}"}}'
    return (
        f'{{"encryptionContext":{context},"encryptionAlgorithm":"SYMMETRIC_DEFAULT"}}',
        _NULL,
        None,
        _kms_key_resource(a, key),
    )


def _kms_generate_data_key(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    key = g.rng.choice(a.kms_keys).replace("REGION", region)
    bucket = g.rng.choice(a.buckets)
    return (
        f'{{"keyId":"{key}","encryptionContext":{{"aws:s3:arn":"arn:aws:s3:::{bucket}"}},'
        f'"keySpec":"AES_256"}}',
        _NULL,
        None,
        _kms_key_resource(a, key),
    )


def _kms_encrypt(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    key = g.rng.choice(a.kms_keys).replace("REGION", region)
    return (
        f'{{"keyId":"{key}","encryptionAlgorithm":"SYMMETRIC_DEFAULT"}}',
        _NULL,
        None,
        _kms_key_resource(a, key),
    )


def _lambda_invoke(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    function = f"arn:aws:lambda:{region}:{a.id}:function:{g.rng.choice(a.functions)}"
    return (
        f'{{"functionName":"{function}","invocationType":"RequestResponse","logType":"None"}}',
        _NULL,
        f'{{"functionVersion":"{function}:$LATEST"}}',
        f'[{{"accountId":"{a.id}","type":"AWS::Lambda::Function","ARN":"{function}"}}]',
    )


def _lambda_list_functions(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    return '{"maxItems":50}' if g.rng.random() < 0.5 else _NULL, _NULL, None, None


def _lambda_update_function_code(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    name = g.rng.choice(a.functions)
    return (
        f'{{"functionName":"{name}","s3Bucket":"{g.rng.choice(a.buckets)}",'
        f'"s3Key":"builds/{name}-{_hex(g.rng, 7)}.zip","publish":false,"dryRun":false}}',
        f'{{"functionName":"{name}","functionArn":"arn:aws:lambda:{region}:{a.id}:function:{name}",'
        f'"runtime":"python3.12","role":"arn:aws:iam::{a.id}:role/lambda-exec-role",'
        f'"handler":"app.handler","codeSize":{g.rng.randrange(10_000, 50_000_000)},"timeout":30,'
        f'"memorySize":512,"lastModified":"{ts[:-1]}.000+0000","version":"$LATEST",'
        f'"state":"Active","lastUpdateStatus":"InProgress","architectures":["arm64"],'
        f'"ephemeralStorage":{{"size":512}}}}',
        None,
        None,
    )


def _console_login(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    ok = g.rng.random() < 0.9
    return (
        _NULL,
        '{"ConsoleLogin":"Success"}' if ok else '{"ConsoleLogin":"Failure"}',
        '{"LoginTo":"https://console.aws.amazon.com/console/home?state=hashArgs%23&isauthcode=true",'
        f'"MobileVersion":"No","MFAUsed":"{"Yes" if g.rng.random() < 0.7 else "No"}"}}',
        None,
    )


def _cloudtrail_lookup_events(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    return (
        '{"lookupAttributes":[{"attributeKey":"ReadOnly","attributeValue":"false"}],"maxResults":50}',
        _NULL,
        None,
        None,
    )


def _cloudtrail_describe_trails(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    return '{"includeShadowTrails":true}', _NULL, None, None


def _logs_create_log_stream(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    function = g.rng.choice(a.functions)
    stream = f"{ts[:10].replace('-', '/')}/[$LATEST]{_hex(g.rng, 32)}"
    return (
        f'{{"logGroupName":"/aws/lambda/{function}","logStreamName":"{stream}"}}',
        _NULL,
        None,
        None,
    )


def _dynamodb_get_item(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    table = g.rng.choice(a.tables)
    return (
        f'{{"tableName":"{table}","key":{{"pk":"HIDDEN_DUE_TO_SECURITY_REASONS"}},'
        f'"consistentRead":false}}',
        _NULL,
        None,
        f'[{{"accountId":"{a.id}","type":"AWS::DynamoDB::Table",'
        f'"ARN":"arn:aws:dynamodb:{region}:{a.id}:table/{table}"}}]',
    )


def _dynamodb_describe_table(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    return f'{{"tableName":"{g.rng.choice(a.tables)}"}}', _NULL, None, None


def _ssm_get_parameter(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    name = g.rng.choice(("/app/db/password", "/app/api/key", "/cdk-bootstrap/hnb659fds/version"))
    return f'{{"name":"{name}","withDecryption":true}}', _NULL, None, None


def _ssm_update_instance_information(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    ip = f"10.0.{g.rng.randrange(256)}.{g.rng.randrange(1, 255)}"
    return (
        f'{{"instanceId":"i-{_hex(g.rng, 17)}","agentVersion":"3.2.1705.0",'
        f'"agentStatus":"Active","platformType":"Linux","platformName":"Amazon Linux",'
        f'"platformVersion":"2023","iPAddress":"{ip}","computerName":"ip-{ip.replace(".", "-")}.'
        f'{region}.compute.internal","agentName":"amazon-ssm-agent","availabilityZone":"{region}b",'
        f'"availabilityZoneId":"use1-az4","sSMConnectionChannel":"ssmmessages"}}',
        _NULL,
        None,
        None,
    )


def _ssm_send_command(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    return (
        f'{{"instanceIds":["i-{_hex(g.rng, 17)}"],"documentName":"AWS-RunShellScript",'
        f'"parameters":"HIDDEN_DUE_TO_SECURITY_REASONS","interactive":false}}',
        f'{{"command":{{"commandId":"{_uuid(g.rng)}","documentName":"AWS-RunShellScript",'
        f'"status":"Pending","targetCount":1}}}}',
        None,
        None,
    )


def _secrets_get_secret_value(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    return (
        f'{{"secretId":"arn:aws:secretsmanager:{region}:{a.id}:secret:'
        f'prod/db-{_chars(g.rng, _ALNUM, 6)}"}}',
        _NULL,
        None,
        None,
    )


def _sso_list_accounts(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    return '{"maxResults":20}', _NULL, None, None


def _service_event_null(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    return _NULL, _NULL, None, None


def _kms_rotate_key(g: _Gen, a: _Account, region: str, ts: str) -> Payload:
    key = g.rng.choice(a.kms_keys).replace("REGION", region)
    return _NULL, _NULL, None, _kms_key_resource(a, key)


@dataclass(frozen=True)
class _Api:
    """One API CloudTrail logs, how often, and how to build its payloads."""

    source: str
    name: str
    weight: float
    build: Callable[[_Gen, _Account, str, str], Payload]
    read_only: bool = True
    data_event: bool = False
    event_type: str = "AwsApiCall"
    caller: str = "any"  # any | console | saml | webid | service | identity-center
    api_version: str | None = None
    global_service: bool = False
    service_details: str | None = None  # serviceEventDetails template for service events


APIS: tuple[_Api, ...] = (
    _Api("s3.amazonaws.com", "GetObject", 12, _s3_get_object, data_event=True),
    _Api("s3.amazonaws.com", "PutObject", 6, _s3_put_object, read_only=False, data_event=True),
    _Api("s3.amazonaws.com", "DeleteObject", 1, _s3_delete_object, False, data_event=True),
    _Api("s3.amazonaws.com", "ListBuckets", 2, _s3_list_buckets),
    _Api("s3.amazonaws.com", "GetBucketAcl", 2, _s3_get_bucket_acl),
    _Api("s3.amazonaws.com", "PutBucketPolicy", 0.3, _s3_put_bucket_policy, read_only=False),
    _Api("ec2.amazonaws.com", "DescribeInstances", 5, _ec2_describe_instances),
    _Api("ec2.amazonaws.com", "RunInstances", 0.5, _ec2_run_instances, read_only=False),
    _Api("ec2.amazonaws.com", "TerminateInstances", 0.3, _ec2_terminate_instances, False),
    _Api("ec2.amazonaws.com", "DescribeSecurityGroups", 2, _ec2_describe_security_groups),
    _Api("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", 0.3, _ec2_authorize_ingress, False),
    _Api("ec2.amazonaws.com", "CreateTags", 0.5, _ec2_create_tags, read_only=False),
    _Api("ec2.amazonaws.com", "DescribeVolumes", 1.5, _ec2_describe_volumes),
    _Api("iam.amazonaws.com", "CreateUser", 0.2, _iam_create_user, False, global_service=True),
    _Api(
        "iam.amazonaws.com", "AttachRolePolicy", 0.3, _iam_attach_role_policy, False,
        global_service=True,
    ),
    _Api("iam.amazonaws.com", "GetRole", 1.5, _iam_get_role, global_service=True),
    _Api("iam.amazonaws.com", "ListRoles", 1, _iam_list_roles, global_service=True),
    _Api(
        "iam.amazonaws.com", "PutRolePolicy", 0.3, _iam_put_role_policy, False,
        global_service=True,
    ),
    _Api(
        "iam.amazonaws.com", "CreateAccessKey", 0.1, _iam_create_access_key, False,
        global_service=True,
    ),
    _Api(
        "iam.amazonaws.com", "ListAttachedRolePolicies", 1, _iam_list_attached_role_policies,
        global_service=True,
    ),
    _Api("sts.amazonaws.com", "AssumeRole", 6, _sts_assume_role),
    _Api("sts.amazonaws.com", "GetCallerIdentity", 3, _sts_get_caller_identity),
    _Api(
        "sts.amazonaws.com", "AssumeRoleWithWebIdentity", 0.5, _sts_assume_role_with_web_identity,
        caller="webid",
    ),
    _Api("sts.amazonaws.com", "AssumeRoleWithSAML", 0.3, _sts_assume_role_with_saml, caller="saml"),
    _Api("sts.amazonaws.com", "GetSessionToken", 0.2, _sts_get_session_token),
    _Api("kms.amazonaws.com", "Decrypt", 8, _kms_decrypt),
    _Api("kms.amazonaws.com", "GenerateDataKey", 3, _kms_generate_data_key),
    _Api("kms.amazonaws.com", "Encrypt", 1, _kms_encrypt),
    _Api("lambda.amazonaws.com", "Invoke", 3, _lambda_invoke, read_only=False, data_event=True),
    _Api(
        "lambda.amazonaws.com", "ListFunctions20150331", 0.5, _lambda_list_functions,
        api_version="2015-03-31",
    ),
    _Api(
        "lambda.amazonaws.com", "UpdateFunctionCode20150331v2", 0.1, _lambda_update_function_code,
        read_only=False, api_version="2015-03-31",
    ),
    _Api(
        "signin.amazonaws.com", "ConsoleLogin", 0.3, _console_login, read_only=False,
        event_type="AwsConsoleSignIn", caller="console", global_service=True,
    ),
    _Api("cloudtrail.amazonaws.com", "LookupEvents", 0.5, _cloudtrail_lookup_events),
    _Api("cloudtrail.amazonaws.com", "DescribeTrails", 0.5, _cloudtrail_describe_trails),
    _Api("logs.amazonaws.com", "CreateLogStream", 2, _logs_create_log_stream, read_only=False),
    _Api("dynamodb.amazonaws.com", "GetItem", 2, _dynamodb_get_item, data_event=True),
    _Api("dynamodb.amazonaws.com", "DescribeTable", 1, _dynamodb_describe_table),
    _Api("ssm.amazonaws.com", "GetParameter", 2, _ssm_get_parameter),
    _Api(
        "ssm.amazonaws.com", "UpdateInstanceInformation", 3, _ssm_update_instance_information,
        read_only=False,
    ),
    _Api("ssm.amazonaws.com", "SendCommand", 0.2, _ssm_send_command, read_only=False),
    _Api("secretsmanager.amazonaws.com", "GetSecretValue", 1.5, _secrets_get_secret_value),
    _Api("sso.amazonaws.com", "ListAccounts", 0.3, _sso_list_accounts, caller="identity-center"),
    _Api(
        "backup.amazonaws.com", "BackupJobCompleted", 0.2, _service_event_null, read_only=False,
        event_type="AwsServiceEvent", caller="service",
        service_details=(
            '{"backupJobId":"JOB","backupVaultName":"Default","state":"COMPLETED",'
            '"backupSizeInBytes":"1073741824","percentDone":100.0,"isEncrypted":true}'
        ),
    ),
    _Api(
        "ec2.amazonaws.com", "SharedSnapshotVolumeCreated", 0.1, _service_event_null,
        read_only=False, event_type="AwsServiceEvent", caller="service",
        service_details='{"snapshotId":"snap-JOB"}',
    ),
    _Api(
        "kms.amazonaws.com", "RotateKey", 0.1, _kms_rotate_key, read_only=False,
        event_type="AwsServiceEvent", caller="service",
    ),
)  # fmt: skip
_API_BY_NAME = {api.name: api for api in APIS}
_API_CUMULATIVE = tuple(accumulate(api.weight for api in APIS))


# --- Edge-case payloads ------------------------------------------------------------------
# Each replaces the requestParameters (or responseElements) of an event of its API, with
# JSON text json.dumps would not write: escapes, number forms, raw and escaped non-ASCII.

SPECIAL_PAYLOADS: dict[str, tuple[str, str, str]] = {
    # name: (API, field, JSON text)
    "backslash": (
        "SendCommand",
        "requestParameters",
        r'{"commandLine":"C:\\Windows\\System32\\cmd.exe /c dir","workingDirectory":'
        r'"C:\\Users\\Administrator\\"}',
    ),
    "control_chars": (
        "SendCommand",
        "requestParameters",
        r'{"script":"#!/bin/bash\necho hello\tworld\u0001\r\n","comment":"bell\u0007 \u001f end"}',
    ),
    "unicode_escapes": (
        "CreateTags",
        "requestParameters",
        r'{"tagSet":{"items":[{"key":"caf\u00e9","value":"\ud83d\ude00 \u65e5\u672c"}]}}',
    ),
    "raw_utf8": (
        "CreateTags",
        "requestParameters",
        '{"tagSet":{"items":[{"key":"owner","value":"Zoë café 日本語 😀"}]}}',
    ),
    "mixed_unicode": (
        "PutObject",
        "requestParameters",
        r'{"bucketName":"media","key":"caf\u00e9/café/日本/\u65e5\u672c.txt"}',
    ),
    "escaped_slash": (
        "Invoke",
        "requestParameters",
        r'{"functionName":"arn:aws:lambda:us-east-1:123456789012:function:hook",'
        r'"callbackUrl":"https:\/\/example.com\/hooks\/a?b=1","path":"\/var\/task"}',
    ),
    "float_forms": (
        "GetItem",
        "responseElements",
        '{"ratio":0.5,"threshold":1.0,"epsilon":1e-07,"offset":-0.0,"scale":2.5E+3,"price":19.990}',
    ),
    "big_ints": (
        "GetItem",
        "responseElements",
        '{"size":18446744073709551616,"max":9223372036854775807,"min":-9223372036854775808,'
        '"precise":9007199254740993}',
    ),
    "nested_arrays": (
        "GetItem",
        "requestParameters",
        '{"tableName":"matrix","matrix":[[1,2],[3,[4]]],"deep":[[[[]]]]}',
    ),
    "empty_containers": (
        "DescribeInstances",
        "requestParameters",
        '{"instancesSet":{},"filterSet":{"items":[]},"nextToken":""}',
    ),
    "case_twins": (
        "DescribeInstances",
        "requestParameters",
        '{"MaxResults":5,"maxResults":"10"}',
    ),
    "tags_array": (
        "UpdateFunctionCode20150331v2",
        "requestParameters",
        '{"functionName":"etl","tags":[{"key":"env","value":"prod"},{"key":"team","value":"data"}]}',
    ),
    "tags_object": (
        "UpdateFunctionCode20150331v2",
        "requestParameters",
        '{"functionName":"etl","tags":{"env":"prod","team":"data"}}',
    ),
    "string_payload": (
        "GetBucketAcl",
        "requestParameters",
        r'"{\"bucketName\":\"legacy-bucket\",\"acl\":\"\"}"',
    ),
    "unicode_keys": (
        "PutObject",
        "requestParameters",
        r'{"bucketName":"media","clé":"v","\u00e9t\u00e9":1,"x-amz-meta-日付":"2024-01-05"}',
    ),
}

LARGE_PAYLOADS = {"large_policy": "PutRolePolicy", "large_response": "RunInstances"}
"""Features making a 200 KB+ payload: a long policy document, a large launch response."""
_SPECIAL_NAMES = tuple(SPECIAL_PAYLOADS)
_LARGE_NAMES = tuple(LARGE_PAYLOADS)
_PAYLOAD_FEATURES = frozenset((*SPECIAL_PAYLOADS, *LARGE_PAYLOADS))

RECORD_FEATURES = {
    "error": "GetRole",
    "vpc_endpoint": "GetObject",
    "shared_event_id": "AssumeRole",
    "console_session": "DescribeInstances",
    "addendum": "PutObject",
    "edge_device": "PutObject",
    "bytes_float": "GetObject",
    "object_no_account": "GetObject",
    "max_results_int": "DescribeInstances",
    "max_results_str": "DescribeInstances",
    "api_version": "ListFunctions20150331",
    "console_login": "ConsoleLogin",
    "service_event": "BackupJobCompleted",
}
"""Other features, with the API that shows them."""
_PLAIN_CALLER = frozenset(("error", "vpc_endpoint", "shared_event_id", "console_session"))
"""Features that need a person calling (not a service) to show."""

FEATURES: tuple[str, ...] = (
    *IDENTITY_KINDS,
    *SPECIAL_PAYLOADS,
    *LARGE_PAYLOADS,
    *RECORD_FEATURES,
)
"""Every feature; each is forced onto at least one event when the corpus is large enough."""

_FEATURE_API: dict[str, str] = {
    **{name: api for name, (api, _, _) in SPECIAL_PAYLOADS.items()},
    **LARGE_PAYLOADS,
    **RECORD_FEATURES,
    "SAMLUser": "AssumeRoleWithSAML",
    "WebIdentityUser": "AssumeRoleWithWebIdentity",
    "AWSServiceNoType": "SharedSnapshotVolumeCreated",
    "IdentityCenterUser": "ListAccounts",
    "Anonymous": "GetObject",
}

_SPECIAL_RATE = 0.01
_LARGE_RATE = 0.0001
_ERROR_RATE = 0.05
_VPC_RATE = 0.05
_SHARED_RATE = 0.01
_ADDENDUM_RATE = 0.003
_EDGE_RATE = 0.002
_CONSOLE_RATE = 0.12
_ANONYMOUS_RATE = 0.03


# --- Identities --------------------------------------------------------------------------


def _session_context(
    created: str, mfa: str, issuer: str = "{}", web: str = "{}", extra: str = ""
) -> str:
    return (
        f'"sessionContext":{{"sessionIssuer":{issuer},"webIdFederationData":{web},'
        f'"attributes":{{"creationDate":"{created}","mfaAuthenticated":"{mfa}"}}{extra}}}'
    )


def _role_issuer(account: str, role: str, role_id: str) -> str:
    return (
        f'{{"type":"Role","principalId":"{role_id}","arn":"arn:aws:iam::{account}:role/{role}",'
        f'"accountId":"{account}","userName":"{role}"}}'
    )


def _root(rng: Random, kind: str, a: _Account, region: str, created: str) -> str:
    assumed = ',"assumedRoot":"true"' if kind == "RootAssumed" else ""
    return (
        f'{{"type":"Root","principalId":"{a.id}","arn":"arn:aws:iam::{a.id}:root",'
        f'"accountId":"{a.id}","accessKeyId":"ASIA{_chars(rng, _UPPER_ALNUM, 16)}",'
        f'"sessionContext":{{"attributes":{{"creationDate":"{created}",'
        f'"mfaAuthenticated":"{"false" if assumed else "true"}"}}{assumed}}}}}'
    )


def _iam_user(rng: Random, kind: str, a: _Account, region: str, created: str) -> str:
    user = rng.choice(_USERS)
    if rng.random() < 0.4:  # A console session: temporary key and a session context.
        key = f"ASIA{_chars(rng, _UPPER_ALNUM, 16)}"
        context = "," + _session_context(created, "true")
    else:
        key, context = f"AKIA{_chars(rng, _UPPER_ALNUM, 16)}", ""
    return (
        f'{{"type":"IAMUser","principalId":"AIDA{_chars(rng, _UPPER_ALNUM, 17)}",'
        f'"arn":"arn:aws:iam::{a.id}:user/{user}","accountId":"{a.id}",'
        f'"accessKeyId":"{key}","userName":"{user}"{context}}}'
    )


def _assumed_role(rng: Random, kind: str, a: _Account, region: str, created: str) -> str:
    role = rng.choice(_ROLES)
    role_id = f"AROA{_chars(rng, _UPPER_ALNUM, 17)}"
    session = rng.choice(_USERS) + "@example.com"
    web, extra, outer = "{}", "", ""
    if kind == "AssumedRoleSourceIdentity":
        extra = f',"sourceIdentity":"{session}"'
    elif kind == "AssumedRoleEc2":
        session = f"i-{_hex(rng, 17)}"
        extra = ',"ec2RoleDelivery":"2.0"'
    elif kind == "AssumedRoleWebIdentity":
        session = f"botocore-session-{rng.randrange(10**9, 10**10)}"
        provider = f"oidc.eks.{region}.amazonaws.com/id/{_hex(rng, 32).upper()}"
        web = (
            f'{{"federatedProvider":"arn:aws:iam::{a.id}:oidc-provider/{provider}",'
            f'"attributes":{{"{provider}:sub":"system:serviceaccount:default:app",'
            f'"{provider}:aud":"sts.amazonaws.com"}}}}'
        )
    elif kind == "AssumedRoleInScopeOf":
        role, session = "lambda-exec-role", rng.choice(a.functions)
        outer = (
            f',"inScopeOf":{{"issuerType":"AWS::Lambda::Function","credentialsIssuedTo":'
            f'"arn:aws:lambda:{region}:{a.id}:function:{session}"}}'
        )
    mfa = "true" if rng.random() < 0.3 else "false"
    context = _session_context(created, mfa, _role_issuer(a.id, role, role_id), web, extra)
    return (
        f'{{"type":"AssumedRole","principalId":"{role_id}:{session}",'
        f'"arn":"arn:aws:sts::{a.id}:assumed-role/{role}/{session}","accountId":"{a.id}",'
        f'"accessKeyId":"ASIA{_chars(rng, _UPPER_ALNUM, 16)}",{context}{outer}}}'
    )


def _federated_user(rng: Random, kind: str, a: _Account, region: str, created: str) -> str:
    user = rng.choice(_USERS)
    issuer = (
        f'{{"type":"IAMUser","principalId":"AIDA{_chars(rng, _UPPER_ALNUM, 17)}",'
        f'"arn":"arn:aws:iam::{a.id}:user/{user}","accountId":"{a.id}","userName":"{user}"}}'
    )
    return (
        f'{{"type":"FederatedUser","principalId":"{a.id}:{user}",'
        f'"arn":"arn:aws:sts::{a.id}:federated-user/{user}","accountId":"{a.id}",'
        f'"accessKeyId":"ASIA{_chars(rng, _UPPER_ALNUM, 16)}",'
        f"{_session_context(created, 'false', issuer)}}}"
    )


def _aws_account(rng: Random, kind: str, a: _Account, region: str, created: str) -> str:
    principal = f"AROA{_chars(rng, _UPPER_ALNUM, 17)}:{rng.choice(_USERS)}"
    return f'{{"type":"AWSAccount","principalId":"{principal}","accountId":"{a.other_account}"}}'


def _identity_center_user(rng: Random, kind: str, a: _Account, region: str, created: str) -> str:
    store = f"arn:aws:identitystore::{a.id}:identitystore/d-{_hex(rng, 10)}"
    return (
        f'{{"type":"IdentityCenterUser","accountId":"{a.id}","onBehalfOf":{{"userId":'
        f'"{_uuid(rng)}","identityStoreArn":"{store}"}},'
        f'"credentialId":"{_chars(rng, _ALNUM, 40)}"}}'
    )


def _saml_user(rng: Random, kind: str, a: _Account, region: str, created: str) -> str:
    user = rng.choice(_USERS) + "@example.com"
    return (
        f'{{"type":"SAMLUser","principalId":"{_chars(rng, _ALNUM, 27)}=:{user}",'
        f'"userName":"{user}","identityProvider":"{_chars(rng, _ALNUM, 22)}=="}}'
    )


def _web_identity_user(rng: Random, kind: str, a: _Account, region: str, created: str) -> str:
    provider = f"arn:aws:iam::{a.id}:oidc-provider/token.actions.githubusercontent.com"
    subject = "repo:example/app:ref:refs/heads/main"
    return (
        f'{{"type":"WebIdentityUser","principalId":"{provider}:sts.amazonaws.com:{subject}",'
        f'"userName":"{subject}","identityProvider":"{provider}"}}'
    )


def _unknown(rng: Random, kind: str, a: _Account, region: str, created: str) -> str:
    return (
        f'{{"type":"Unknown","principalId":"{_hex(rng, 10)}-{_uuid(rng)}","accountId":"{a.id}",'
        f'"userName":"{rng.choice(_USERS)}"}}'
    )


def _anonymous(rng: Random, kind: str, a: _Account, region: str, created: str) -> str:
    return '{"type":"AWSAccount","principalId":"","accountId":"ANONYMOUS_PRINCIPAL"}'


_IDENTITY_MAKERS: dict[str, Callable[[Random, str, _Account, str, str], str]] = {
    "Root": _root,
    "RootAssumed": _root,
    "IAMUser": _iam_user,
    "AssumedRole": _assumed_role,
    "AssumedRoleSourceIdentity": _assumed_role,
    "AssumedRoleEc2": _assumed_role,
    "AssumedRoleWebIdentity": _assumed_role,
    "AssumedRoleInScopeOf": _assumed_role,
    "FederatedUser": _federated_user,
    "AWSAccount": _aws_account,
    "IdentityCenterUser": _identity_center_user,
    "SAMLUser": _saml_user,
    "WebIdentityUser": _web_identity_user,
    "Unknown": _unknown,
    "Anonymous": _anonymous,
}
_SERVICE_CALLERS = {
    # Services call with an identity that is little more than their name; some with no type.
    "AWSService": ('{{"type":"AWSService","invokedBy":"{service}"}}', _CALLING_SERVICES),
    "AWSServiceNoType": (
        '{{"accountId":"{account}","invokedBy":"{service}"}}',
        ("ec2.amazonaws.com", "backup.amazonaws.com", "kms.amazonaws.com"),
    ),
}


def _make_identity(
    rng: Random, kind: str, a: _Account, region: str, created: str
) -> tuple[str, str | None]:
    """A userIdentity object of one kind as JSON text, and the service it was invoked by."""
    service_caller = _SERVICE_CALLERS.get(kind)
    if service_caller is not None:
        template, services = service_caller
        service = rng.choice(services)
        return template.format(account=a.id, service=service), service
    return _IDENTITY_MAKERS[kind](rng, kind, a, region, created), None


# --- Records -----------------------------------------------------------------------------


class _Gen:
    """Random state and pools shared by every record of one corpus."""

    def __init__(
        self,
        rng: Random,
        accounts: list[_Account],
        regions: tuple[str, ...],
        start: date,
        days: int,
    ):
        self.rng = rng
        self.accounts = accounts
        self.regions = regions
        self.start = start
        self.feature: str | None = None
        self._identities: dict[tuple[int, int, str, str], list[tuple[str, str | None]]] = {}
        self._global_region = "us-east-1" if "us-east-1" in regions else regions[0]
        self._callers = {
            caller: (tuple(k for k, _ in kinds), tuple(accumulate(w for _, w in kinds)))
            for caller, kinds in _CALLERS.items()
        }
        self._version_cumulative = tuple(accumulate(_EVENT_VERSION_WEIGHTS))
        self._days = [(start + timedelta(days=d)).isoformat() for d in range(days)]

    def forced(self, feature: str) -> bool:
        """Whether the event being built must show ``feature``."""
        return self.feature == feature

    def hit(self, feature: str, rate: float) -> bool:
        """Whether the event being built shows ``feature``: forced, or at random at ``rate``."""
        return self.feature == feature or self.rng.random() < rate

    def _identity(self, account: int, day: int, kind: str, region: str) -> tuple[str, str | None]:
        """A userIdentity from a small pool per account, day and kind (sessions get reused)."""
        pool = self._identities.get((account, day, kind, region))
        if pool is None:
            session_start = datetime(
                self.start.year, self.start.month, self.start.day, tzinfo=UTC
            ) + timedelta(days=day, seconds=-self.rng.randrange(60, 3600))
            created = _iso(session_start)
            pool = [
                _make_identity(self.rng, kind, self.accounts[account], region, created)
                for _ in range(4)
            ]
            self._identities[(account, day, kind, region)] = pool
        return pool[self.rng.randrange(len(pool))]

    def _pick_kind(self, api: _Api) -> str:
        feature = self.feature
        if feature is not None and feature in IDENTITY_KINDS:
            return feature
        if feature in _PLAIN_CALLER:
            return "AssumedRole"
        if api.name == "GetObject" and self.rng.random() < _ANONYMOUS_RATE:
            return "Anonymous"
        kinds, cumulative = self._callers[api.caller]
        return kinds[bisect.bisect(cumulative, self.rng.random() * cumulative[-1])]

    def _pick_api(self) -> _Api:
        """The API of the event; a rare event gets an edge-case or a large payload."""
        rng = self.rng
        if self.feature is None:
            roll = rng.random()
            if roll < _SPECIAL_RATE:
                self.feature = rng.choice(_SPECIAL_NAMES)
            elif roll < _SPECIAL_RATE + _LARGE_RATE:
                self.feature = rng.choice(_LARGE_NAMES)
        if self.feature is not None:
            name = _FEATURE_API.get(self.feature)
            if name is not None:
                return _API_BY_NAME[name]
        return APIS[bisect.bisect(_API_CUMULATIVE, rng.random() * _API_CUMULATIVE[-1])]

    def record(
        self,
        account: int,
        region_choice: int,
        second: int,
        event_id: str,
        feature: str | None,
        unknown: int | None,
    ) -> tuple[str, str]:
        """One API event record as JSON text, and its region."""
        rng = self.rng
        a = self.accounts[account]
        self.feature = feature
        api = self._pick_api()
        region = self._global_region if api.global_service else self.regions[region_choice]
        day, in_day = divmod(second, 86400)
        hour, rest = divmod(in_day, 3600)
        ts = f"{self._days[day]}T{hour:02d}:{rest // 60:02d}:{rest % 60:02d}Z"
        version = bisect.bisect(self._version_cumulative, rng.random() * 100)

        kind = self._pick_kind(api)
        identity, invoked_by = self._identity(account, day, kind, region)
        if unknown is not None and UNKNOWN_FIELDS[unknown][0] == "userIdentity":
            identity = f"{identity[:-1]},{UNKNOWN_FIELDS[unknown][1]}}}"

        service_event = api.event_type == "AwsServiceEvent"
        signin = api.caller == "console"
        console = kind in _HUMAN_KINDS and (signin or self.hit("console_session", _CONSOLE_RATE))
        if invoked_by is not None:
            source_ip = invoked_by if service_event or rng.random() < 0.9 else "AWS Internal"
            agent = invoked_by if source_ip != "AWS Internal" else "AWS Internal"
        else:
            source_ip = a.ips[rng.randrange(len(a.ips))]
            agent = rng.choice(_CONSOLE_AGENTS) if console else rng.choice(_SDK_AGENTS)

        request, response, additional, resources = api.build(self, a, region, ts)
        special = SPECIAL_PAYLOADS.get(self.feature or "")
        if special is not None:
            if special[1] == "requestParameters":
                request = special[2]
            else:
                response = special[2]

        parts = [
            f'{{"eventVersion":"{_EVENT_VERSIONS[version]}","userIdentity":{identity},'
            f'"eventTime":"{ts}","eventSource":"{api.source}","eventName":"{api.name}",'
            f'"awsRegion":"{region}","sourceIPAddress":"{source_ip}","userAgent":"{agent}",'
        ]
        if not service_event and self.hit("error", _ERROR_RATE):
            code, message = rng.choice(_ERRORS)
            parts.append(f'"errorCode":"{code}","errorMessage":"{message}",')
            if self.feature not in _PAYLOAD_FEATURES:  # keep an edge-case or large response
                response = _NULL
        parts.append(f'"requestParameters":{request},"responseElements":{response},')
        if additional is not None:
            parts.append(f'"additionalEventData":{additional},')
        if not service_event:
            request_id = (
                _chars(rng, _UPPER_ALNUM, 16) if api.source == "s3.amazonaws.com" else _uuid(rng)
            )
            parts.append(f'"requestID":"{request_id}",')
        parts.append(f'"eventID":"{event_id}","readOnly":{"true" if api.read_only else "false"},')
        if resources is not None:
            parts.append(f'"resources":{resources},')
        parts.append(f'"eventType":"{api.event_type}",')
        if api.api_version is not None:
            parts.append(f'"apiVersion":"{api.api_version}",')
        management = "false" if api.data_event else "true"
        parts.append(f'"managementEvent":{management},"recipientAccountId":"{a.id}",')
        if service_event or kind == "AWSAccount" or self.hit("shared_event_id", _SHARED_RATE):
            parts.append(f'"sharedEventID":"{_uuid(rng)}",')
        if not service_event and invoked_by is None and self.hit("vpc_endpoint", _VPC_RATE):
            with_owner = self.forced("vpc_endpoint") or rng.random() < 0.8
            owner = f',"vpcEndpointAccountId":"{a.id}"' if with_owner else ""
            parts.append(f'"vpcEndpointId":"vpce-{_hex(rng, 17)}"{owner},')
        if api.service_details is not None:
            details = api.service_details.replace("JOB", _hex(rng, 17))
            parts.append(f'"serviceEventDetails":{details},')
        parts.append(f'"eventCategory":"{"Data" if api.data_event else "Management"}"')
        if version >= _TLS_FROM and invoked_by is None and not service_event:
            tls_version, cipher = _TLS[rng.randrange(3)]
            prefix = api.source.split(".", 1)[0]
            host = (
                f"{prefix}.amazonaws.com"
                if api.global_service
                else f"{prefix}.{region}.amazonaws.com"
            )
            parts.append(
                f',"tlsDetails":{{"tlsVersion":"{tls_version}","cipherSuite":"{cipher}",'
                f'"clientProvidedHostHeader":"{host}"}}'
            )
        if console and not signin:
            parts.append(',"sessionCredentialFromConsole":"true"')
        if self.hit("addendum", _ADDENDUM_RATE):
            if self.forced("addendum") or rng.random() < 0.5:
                parts.append(
                    f',"addendum":{{"reason":"UPDATED_DATA","updatedFields":"sourceIPAddress",'
                    f'"originalRequestID":"{_uuid(rng)}","originalEventID":"{_uuid(rng)}"}}'
                )
            else:
                parts.append(',"addendum":{"reason":"DELIVERY_DELAY"}')
        if self.hit("edge_device", _EDGE_RATE):
            parts.append(
                f',"edgeDeviceDetails":{{"type":"outposts","deviceID":"op-{_hex(rng, 17)}"}}'
            )
        if unknown is not None and UNKNOWN_FIELDS[unknown][0] == "top":
            parts.append("," + UNKNOWN_FIELDS[unknown][1])
        parts.append("}")
        return "".join(parts), region


# --- Delivery: event objects, digests, Insights -------------------------------------------


@dataclass
class _Chunk:
    """One event object being assembled."""

    account: int
    region: str
    delivered: date
    minute: int  # minutes since midnight of the delivery date, for the file name
    members: list[int] = field(default_factory=list)


def _count(rate: float, n: int) -> int:
    return 0 if rate <= 0 or n == 0 else min(n, max(1, round(rate * n)))


def _gzip(document: bytes, level: int) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # gzip, mtime 0: reproducible
    return compressor.compress(document) + compressor.flush()


class _Writer:
    """Writes objects under the root, creating folders once."""

    def __init__(self, root: Path, level: int):
        self.root = root
        self.level = level
        self._folders: set[str] = set()

    def write(self, key: str, document: bytes) -> None:
        folder, _, _ = key.rpartition("/")
        if folder not in self._folders:
            (self.root / folder).mkdir(parents=True, exist_ok=True)
            self._folders.add(folder)
        (self.root / key).write_bytes(_gzip(document, self.level))


def _prefix(a: _Account, org_id: str | None) -> str:
    return f"AWSLogs/{org_id}/{a.id}" if a.org_layout and org_id else f"AWSLogs/{a.id}"


def _folder_date(day: date) -> str:
    return f"{day.year:04d}/{day.month:02d}/{day.day:02d}"


def _stamp(day: date, minute: int) -> str:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}T{minute // 60:02d}{minute % 60:02d}Z"


def generate_corpus(
    root: Path,
    *,
    seed: int,
    events: int,
    start: date = date(2024, 1, 5),
    days: int = 2,
    accounts: int = 2,
    regions: tuple[str, ...] = ("us-east-1", "eu-west-1"),
    events_per_object: int = 100,
    org_id: str | None = "o-a1b2c3d4e5",
    duplicate_rate: float = 0.01,
    late_rate: float = 0.02,
    unknown_field_rate: float = 0.02,
    gzip_level: int = 6,
) -> Corpus:
    """Write a CloudTrail corpus under ``root`` and return what the table must hold.

    ``events`` distinct API events spread over ``days`` days from ``start`` (UTC), across
    ``accounts`` accounts (every other one under ``org_id``'s organisation-trail prefix) and
    ``regions``, about ``events_per_object`` records per object (re-delivered duplicates
    come on top), plus hourly digests and a few Insights objects.
    """
    if events < 0 or days < 1 or accounts < 1 or not regions or events_per_object < 1:
        raise ValueError("events >= 0, days >= 1, accounts >= 1, regions and objects non-empty")
    rng = Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    corpus_accounts = [_make_account(rng, index, org_id) for index in range(accounts)]
    gen = _Gen(rng, corpus_accounts, regions, start, days)

    # 1. Event times, sorted, with extra weight on the ten minutes before midnight so that
    #    late deliveries have candidates.
    window = min(0.5, 2 * late_rate + 0.005)
    span = days * 86400
    seconds = sorted(
        rng.randrange(days) * 86400 + 85800 + rng.randrange(600)
        if rng.random() < window
        else rng.randrange(span)
        for _ in range(events)
    )

    # 2. Which events carry which forced feature and which unknown field.
    forced = dict(
        zip(rng.sample(range(events), min(events, len(FEATURES))), FEATURES, strict=False)
    )
    unknown_positions = rng.sample(range(events), _count(unknown_field_rate, events))
    unknown = {
        position: turn % len(UNKNOWN_FIELDS) for turn, position in enumerate(unknown_positions)
    }

    # 3. The records.
    ids: list[str] = []
    texts: list[bytes] = []
    owners: list[tuple[int, str]] = []
    expected: dict[str, ExpectedEvent] = {}
    partitions: dict[tuple[str, int], str] = {}
    for index, second in enumerate(seconds):
        event_id = _uuid(rng)
        while event_id in expected:  # pragma: no cover - 2**-122
            event_id = _uuid(rng)
        account = rng.randrange(accounts)
        text, region = gen.record(
            account,
            rng.randrange(len(regions)),
            second,
            event_id,
            forced.get(index),
            unknown.get(index),
        )
        record_text = text.encode()
        day = second // 86400
        partition = partitions.get((region, day))
        if partition is None:
            when = start + timedelta(days=day)
            partition = (
                f"region={region}/year={when.year:04d}/month={when.month:02d}/day={when.day:02d}"
            )
            partitions[(region, day)] = partition
        expected[event_id] = ExpectedEvent(event_id, record_text, partition)
        ids.append(event_id)
        texts.append(record_text)
        owners.append((account, region))

    # 4. Late and duplicate deliveries.
    candidates = [i for i, second in enumerate(seconds) if second % 86400 >= 85800]
    late = rng.sample(candidates, min(len(candidates), _count(late_rate, events)))
    late_set = set(late)
    duplicates = rng.sample(range(events), _count(duplicate_rate, events))

    # 5. Group by account, region and delivery day; cut into objects.
    groups: dict[tuple[int, str, int], list[int]] = {}
    for index, second in enumerate(seconds):
        account, region = owners[index]
        delivered = second // 86400 + (1 if index in late_set else 0)
        groups.setdefault((account, region, delivered), []).append(index)
    chunks_by_group: dict[tuple[int, str, int], list[_Chunk]] = {}
    home_of: dict[int, int] = dict.fromkeys(duplicates, -1)  # duplicate -> its first object
    for (account, region, delivered), members in groups.items():
        folder_day = start + timedelta(days=delivered)
        chunks = chunks_by_group[(account, region, delivered)] = []
        position = 0
        while position < len(members):
            size = rng.randint(max(1, events_per_object // 2), events_per_object)
            part = members[position : position + size]
            position += size
            newest = max(seconds[part[-1]] - delivered * 86400, 0) // 60
            minute = min(newest + rng.randint(1, 5), 1439)
            for index in part:
                if index in home_of:
                    home_of[index] = len(chunks)
            chunks.append(_Chunk(account, region, folder_day, minute, part))

    # 6. Re-deliver duplicates in another object of their group (a later one if any).
    for index in duplicates:
        account, region = owners[index]
        delivered = seconds[index] // 86400 + (1 if index in late_set else 0)
        group = chunks_by_group[(account, region, delivered)]
        home = home_of[index]
        others = [i for i in range(len(group)) if i != home]
        later = [i for i in others if i > home]
        if later or others:
            target = group[rng.choice(later or others)]
        else:
            last = group[home]
            target = _Chunk(account, region, last.delivered, min(last.minute + 5, 1439))
            group.append(target)
        target.members.insert(rng.randint(0, len(target.members)), index)

    # 7. Write event objects, then a digest per account, region and hour.
    writer = _Writer(root, gzip_level)
    event_objects: list[str] = []
    names: set[str] = set()
    delivered_logs: dict[tuple[int, str], list[tuple[int, str, str, str, str]]] = {}
    total_records = 0
    for chunks in chunks_by_group.values():
        for chunk in chunks:
            a = corpus_accounts[chunk.account]
            folder = (
                f"{_prefix(a, org_id)}/CloudTrail/{chunk.region}/{_folder_date(chunk.delivered)}"
            )
            stamp = _stamp(chunk.delivered, chunk.minute)
            name = f"{folder}/{a.id}_CloudTrail_{chunk.region}_{stamp}_"
            key = f"{name}{_chars(rng, _ALNUM, 16)}.json.gz"
            while key in names:  # pragma: no cover - 62**-16
                key = f"{name}{_chars(rng, _ALNUM, 16)}.json.gz"
            names.add(key)
            document = b'{"Records":[' + b",".join(texts[i] for i in chunk.members) + b"]}"
            writer.write(key, document)
            event_objects.append(key)
            total_records += len(chunk.members)
            times = sorted(seconds[i] for i in chunk.members)
            hour = (chunk.delivered - start).days * 24 + chunk.minute // 60
            delivered_logs.setdefault((chunk.account, chunk.region), []).append(
                (hour, key, hashlib.sha256(document).hexdigest(), _time_text(start, times[0]),
                 _time_text(start, times[-1]))
            )  # fmt: skip
    digest_objects = _write_digests(rng, writer, corpus_accounts, org_id, start, delivered_logs)
    insight_objects = _write_insights(rng, writer, corpus_accounts, regions, start, days, events)

    return Corpus(
        root=root,
        events=expected,
        event_objects=event_objects,
        digest_objects=digest_objects,
        insight_objects=insight_objects,
        duplicate_event_ids={ids[i] for i in duplicates},
        late_event_ids={ids[i] for i in late},
        unknown_field_event_ids={ids[i] for i in unknown_positions},
        total_records=total_records,
    )


def _make_account(rng: Random, index: int, org_id: str | None) -> _Account:
    account_id = f"{rng.randrange(10**11, 10**12)}"
    org_layout = org_id is not None and index % 2 == 0
    suffix = _hex(rng, 8)
    return _Account(
        id=account_id,
        org_layout=org_layout,
        trail="org-trail" if org_layout else "management-events",
        log_bucket=(
            f"org-cloudtrail-logs-{suffix}"
            if org_layout
            else f"aws-cloudtrail-logs-{account_id}-{suffix}"
        ),
        buckets=tuple(
            f"{name}-{account_id}-{_hex(rng, 6)}" for name in ("data-lake", "assets", "backups")
        ),
        kms_keys=tuple(f"arn:aws:kms:REGION:{account_id}:key/{_uuid(rng)}" for _ in range(3)),
        functions=("ingest-orders", "resize-images", "nightly-report", "api-authorizer"),
        tables=("orders", "sessions", "feature-flags"),
        ips=(
            *(
                f"{rng.choice((3, 18, 34, 52, 54, 81, 92, 185, 203))}.{rng.randrange(256)}."
                f"{rng.randrange(256)}.{rng.randrange(1, 255)}"
                for _ in range(19)
            ),
            f"2001:db8:{_hex(rng, 4)}::{_hex(rng, 4)}",
        ),
        other_account=f"{rng.randrange(10**11, 10**12)}",
    )


def _time_text(start: date, second: int) -> str:
    day, in_day = divmod(second, 86400)
    return _iso(
        datetime(start.year, start.month, start.day, tzinfo=UTC)
        + timedelta(days=day, seconds=in_day)
    )


def _write_digests(
    rng: Random,
    writer: _Writer,
    accounts: list[_Account],
    org_id: str | None,
    start: date,
    delivered_logs: dict[tuple[int, str], list[tuple[int, str, str, str, str]]],
) -> list[str]:
    """One digest per account, region and hour with log files, chained like CloudTrail's."""
    objects: list[str] = []
    midnight = datetime(start.year, start.month, start.day, tzinfo=UTC)
    for (account, region), logs in delivered_logs.items():
        a = accounts[account]
        by_hour: dict[int, list[tuple[int, str, str, str, str]]] = {}
        for log in sorted(logs):
            by_hour.setdefault(log[0], []).append(log)
        previous: tuple[str, str, str] | None = None
        for hour, files in sorted(by_hour.items()):
            begin = midnight + timedelta(hours=hour, seconds=rng.randrange(60))
            end = begin + timedelta(hours=1)
            delivered = end + timedelta(seconds=rng.randrange(60, 900))
            stamp = delivered.strftime("%Y%m%dT%H%M%SZ")
            key = (
                f"{_prefix(a, org_id)}/CloudTrail-Digest/{region}/{_folder_date(delivered.date())}/"
                f"{a.id}_CloudTrail-Digest_{region}_{a.trail}_{region}_{stamp}.json.gz"
            )
            digest: dict[str, Any] = {
                "awsAccountId": a.id,
                "digestStartTime": _iso(begin),
                "digestEndTime": _iso(end),
                "digestS3Bucket": a.log_bucket,
                "digestS3Object": key,
                "digestPublicKeyFingerprint": _hex(rng, 32),
                "digestSignatureAlgorithm": "SHA256withRSA",
                "newestEventTime": max(f[4] for f in files),
                "oldestEventTime": min(f[3] for f in files),
                "previousDigestS3Bucket": a.log_bucket if previous else None,
                "previousDigestS3Object": previous[0] if previous else None,
                "previousDigestHashValue": previous[1] if previous else None,
                "previousDigestHashAlgorithm": "SHA-256" if previous else None,
                "previousDigestSignature": previous[2] if previous else None,
                "logFiles": [
                    {
                        "s3Bucket": a.log_bucket,
                        "s3Object": log_key,
                        "hashValue": digest_hash,
                        "hashAlgorithm": "SHA-256",
                        "newestEventTime": newest,
                        "oldestEventTime": oldest,
                    }
                    for _, log_key, digest_hash, oldest, newest in files
                ],
            }
            document = json.dumps(digest, separators=(",", ":")).encode()
            writer.write(key, document)
            objects.append(key)
            previous = (key, hashlib.sha256(document).hexdigest(), _hex(rng, 512))
    return objects


def _write_insights(
    rng: Random,
    writer: _Writer,
    accounts: list[_Account],
    regions: tuple[str, ...],
    start: date,
    days: int,
    events: int,
) -> list[str]:
    """A few Insights: each a Start and an End event, delivered in separate objects."""
    objects: list[str] = []
    midnight = datetime(start.year, start.month, start.day, tzinfo=UTC)
    for _ in range(min(50, max(1, events // 20_000))):
        a = rng.choice(accounts)
        region = rng.choice(regions)
        source, name = rng.choice(
            (("ssm.amazonaws.com", "UpdateInstanceInformation"), ("kms.amazonaws.com", "Decrypt"),
             ("ec2.amazonaws.com", "DescribeInstances"), ("s3.amazonaws.com", "ListBuckets"))
        )  # fmt: skip
        begin = midnight + timedelta(minutes=rng.randrange(days * 1440 - 120))
        duration = rng.randrange(5, 60)
        shared = _uuid(rng)
        baseline = round(rng.uniform(0.5, 100), 10)
        insight = round(baseline * rng.uniform(5, 40), 4)
        for state, when in (("Start", begin), ("End", begin + timedelta(minutes=duration))):
            statistics = (
                f'{{"baseline":{{"average":{baseline}}},"insight":{{"average":{insight}}}'
                + (f',"insightDuration":{duration}' if state == "End" else "")
                + ',"baselineDuration":10079}'
            )
            record = (
                f'{{"eventVersion":"1.08","eventTime":"{_iso(when)}","awsRegion":"{region}",'
                f'"eventID":"{_uuid(rng)}","eventType":"AwsCloudTrailInsight",'
                f'"recipientAccountId":"{a.id}","sharedEventID":"{shared}",'
                f'"insightDetails":{{"state":"{state}","eventSource":"{source}",'
                f'"eventName":"{name}","insightType":"ApiCallRateInsight","insightContext":'
                f'{{"statistics":{statistics},"attributions":[{{"attribute":"userIdentityArn",'
                f'"insight":[{{"value":"arn:aws:sts::{a.id}:assumed-role/AdminRole/alice",'
                f'"average":{insight}}}],"baseline":[{{"value":"arn:aws:sts::{a.id}:'
                f'assumed-role/AdminRole/alice","average":{baseline}}}]}},{{"attribute":"errorCode",'
                f'"insight":[{{"value":"null","average":{insight}}}],"baseline":[{{"value":"null",'
                f'"average":{baseline}}}]}}]}}}},"eventCategory":"Insight"}}'
            )
            delivered = when + timedelta(minutes=rng.randrange(5, 15))
            key = (
                f"AWSLogs/{a.id}/CloudTrail-Insight/{region}/{_folder_date(delivered.date())}/"
                f"{a.id}_CloudTrail-Insight_{region}_{delivered.strftime('%Y%m%dT%H%MZ')}_"
                f"{_chars(rng, _ALNUM, 16)}.json.gz"
            )
            writer.write(key, b'{"Records":[' + record.encode() + b"]}")
            objects.append(key)
    return objects


# --- Reading payload texts back --------------------------------------------------------

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"


def top_level_texts(record_text: bytes, keys: Sequence[str]) -> dict[str, str | None]:
    """The JSON text of each of ``keys`` in a record object, as written; a string's content.

    Independent of the pipeline's decoder (it walks the object with the standard library),
    so it can serve as the expected value.
    """
    text = record_text.decode("utf-8")
    found: dict[str, str | None] = dict.fromkeys(keys)
    wanted = set(keys)
    position = _skip(text, 0)
    if text[position] != "{":
        raise ValueError("record is not a JSON object")
    position = _skip(text, position + 1)
    while text[position] != "}":
        key, position = _DECODER.raw_decode(text, position)
        position = _skip(text, position)
        if text[position] != ":":
            raise ValueError(f"expected ':' at {position}")
        start = _skip(text, position + 1)
        value, end = _DECODER.raw_decode(text, start)
        if key in wanted:
            found[key] = value if isinstance(value, str) or value is None else text[start:end]
        position = _skip(text, end)
        if text[position] == ",":
            position = _skip(text, position + 1)
    return found


def _skip(text: str, position: int) -> int:
    while text[position] in _WHITESPACE:
        position += 1
    return position


def _main(argv: list[str] | None = None) -> None:
    """``python -m tests.corpus DIR``: the command benchmarks and the demo generate logs with."""
    import argparse
    import time

    parser = argparse.ArgumentParser(
        prog="python -m tests.corpus",
        description="Write a seeded, realistic CloudTrail corpus under ROOT, laid out as "
        "CloudTrail delivers it (ROOT/AWSLogs/[o-ORG/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/, "
        "with digests and Insights objects). The same arguments write the same bytes.",
    )
    parser.add_argument("root", type=Path, metavar="ROOT", help="Folder to write AWSLogs/ into.")
    parser.add_argument(
        "--events",
        type=int,
        default=100_000,
        metavar="N",
        help="Distinct API events (about 1%% re-delivered on top). Default: %(default)s.",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="Random seed: another seed, another corpus. Default: %(default)s.",
    )
    parser.add_argument(
        "--start",
        type=date.fromisoformat,
        default=date(2024, 1, 5),
        metavar="YYYY-MM-DD",
        help="First event day (UTC). Default: %(default)s.",
    )
    parser.add_argument(
        "--days",
        type=int,
        default=2,
        metavar="N",
        help="Days the events spread over, from --start. Default: %(default)s.",
    )
    args = parser.parse_args(argv)
    began, began_cpu = time.perf_counter(), time.process_time()
    corpus = generate_corpus(
        args.root, seed=args.seed, events=args.events, start=args.start, days=args.days
    )
    elapsed, cpu = time.perf_counter() - began, time.process_time() - began_cpu
    size = sum((corpus.root / key).stat().st_size for key in corpus.event_objects)
    raw = sum(len(event.record_text) for event in corpus.events.values())
    print(
        f"{len(corpus.events):,} events in {len(corpus.event_objects):,} objects: "
        f"{raw / 1e6:,.1f} MB JSON, {size / 1e6:,.1f} MB gzip; {elapsed:.1f} s wall, "
        f"{cpu:.1f} s CPU ({len(corpus.events) / cpu:,.0f} events per CPU-second)"
    )


if __name__ == "__main__":  # pragma: no cover
    _main()
