"""The CloudTrail record schema: the one place a column is defined.

Every column of the standard Athena CloudTrail table keeps its name and type
(see ``../shared/reference/athena-cloudtrail-ddl.sql``); fields CloudTrail added
since (through eventVersion 1.11) follow them; then the columns this project
derives. Polars, Arrow, Hive/Athena and Glue views are computed from this tree in
``schemas.derive``: nothing about a column is written down twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

SCHEMA_VERSION = "1"
"""Bumped whenever a column is added or changes type; stored in every Parquet file."""

JsonKind = Literal["string", "boolean"]


@dataclass(frozen=True)
class Text:
    """A STRING column.

    ``json_kind`` is the JSON type CloudTrail writes there; a value of another JSON
    type is kept as its JSON text (``readOnly: true`` becomes ``'true'``, as on the
    raw table).
    """

    json_kind: JsonKind = "string"


@dataclass(frozen=True)
class JsonText:
    """A free-form payload kept as STRING: the value's JSON text exactly as written."""


@dataclass(frozen=True)
class Timestamp:
    """A typed UTC timestamp (microseconds), derived from a text field."""


@dataclass(frozen=True)
class Struct:
    """A JSON object of known fields (STRUCT)."""

    fields: tuple[Field, ...]

    # Structs key the decoders' caches, looked up per nested record: hashing the whole
    # tree each time cost more than decoding the record did.
    @cached_property
    def _hash(self) -> int:
        return hash(self.fields)

    def __hash__(self) -> int:
        return self._hash


@dataclass(frozen=True)
class ArrayOf:
    """A JSON array of objects (ARRAY<STRUCT>)."""

    element: Struct


FieldType = Text | JsonText | Timestamp | Struct | ArrayOf


@dataclass(frozen=True)
class Field:
    """One column or struct member.

    ``key`` is the JSON key CloudTrail writes (case-sensitive); ``name`` is the
    lower-case column name Athena shows. A field with no key is derived, not read.
    """

    name: str
    type: FieldType
    key: str | None = None
    doc: str = ""


def _read(key: str, field_type: FieldType | None = None, doc: str = "") -> Field:
    return Field(name=key.lower(), type=field_type or Text(), key=key, doc=doc)


def _struct(*fields: Field) -> Struct:
    return Struct(fields=tuple(fields))


SESSION_ISSUER = _struct(
    _read("type"),
    _read("principalId"),
    _read("arn"),
    _read("accountId"),
    _read("userName"),
)

SESSION_CONTEXT = _struct(
    _read("attributes", _struct(_read("mfaAuthenticated"), _read("creationDate"))),
    _read("sessionIssuer", SESSION_ISSUER),
    # Added after the seed table:
    _read(
        "webIdFederationData",
        _struct(
            _read("federatedProvider"),
            _read("attributes", JsonText(), "Provider claims: free-form, kept as JSON text."),
        ),
    ),
    _read("sourceIdentity"),
    _read("ec2RoleDelivery"),
    _read("assumedRoot"),
)

USER_IDENTITY = _struct(
    _read("type"),
    _read("principalId"),
    _read("arn"),
    _read("accountId"),
    _read("invokedBy"),
    _read("accessKeyId"),
    _read("userName"),
    _read("sessionContext", SESSION_CONTEXT),
    # Added after the seed table:
    _read("identityProvider"),
    _read("credentialId"),
    _read("onBehalfOf", _struct(_read("userId"), _read("identityStoreArn"))),
    _read(
        "inScopeOf",
        _struct(
            _read("issuerType"),
            _read("credentialsIssuedTo"),
            _read("issuerAccountId"),
            _read("issuerSourceArn"),
        ),
    ),
)

RESOURCE = _struct(_read("ARN"), _read("accountId"), _read("type"))

SEED_FIELDS: tuple[Field, ...] = (
    _read("eventVersion"),
    _read("userIdentity", USER_IDENTITY),
    _read("eventTime", doc="The original ISO-8601 text, as on the raw table."),
    _read("eventSource"),
    _read("eventName"),
    _read("awsRegion"),
    _read("sourceIPAddress"),
    _read("userAgent"),
    _read("errorCode"),
    _read("errorMessage"),
    _read("requestParameters", JsonText()),
    _read("responseElements", JsonText()),
    _read("additionalEventData", JsonText()),
    _read("requestID"),
    _read("eventID"),
    _read("resources", ArrayOf(RESOURCE)),
    _read("eventType"),
    _read("apiVersion"),
    _read("readOnly", Text("boolean"), "'true' or 'false', as on the raw table."),
    _read("recipientAccountId"),
    _read("serviceEventDetails", JsonText()),
    _read("sharedEventID"),
    _read("vpcEndpointId"),
)
"""The columns of the standard Athena CloudTrail table, in its order."""

ADDED_FIELDS: tuple[Field, ...] = (
    _read("vpcEndpointAccountId"),
    _read("managementEvent", Text("boolean"), "'true' or 'false', like readonly."),
    _read("eventCategory"),
    _read(
        "tlsDetails",
        _struct(_read("tlsVersion"), _read("cipherSuite"), _read("clientProvidedHostHeader")),
    ),
    _read("sessionCredentialFromConsole"),
    _read("edgeDeviceDetails", JsonText()),
    _read(
        "addendum",
        _struct(
            _read("reason"),
            _read("updatedFields"),
            _read("originalRequestID"),
            _read("originalEventID"),
        ),
    ),
    _read("insightDetails", JsonText()),
)
"""Fields CloudTrail added after the seed table (through eventVersion 1.11)."""

EVENT_TIMESTAMP = Field(
    "eventtimestamp", Timestamp(), doc="eventTime as a UTC timestamp, for fast time filters."
)
UNMAPPED = Field(
    "unmapped",
    JsonText(),
    doc=(
        "JSON object of every input field the schema does not map (new AWS fields, "
        "values of an unexpected shape), mirroring the record's nesting; NULL when none."
    ),
)
DERIVED_FIELDS: tuple[Field, ...] = (EVENT_TIMESTAMP, UNMAPPED)

RECORD_FIELDS: tuple[Field, ...] = SEED_FIELDS + ADDED_FIELDS
"""The fields read from a CloudTrail record, in column order."""

COLUMNS: tuple[Field, ...] = RECORD_FIELDS + DERIVED_FIELDS
"""Every column stored in a Parquet file of the events table."""


@dataclass(frozen=True)
class TableSchema:
    """A table of CloudTrail records: the fields read, then the derived columns.

    The transforms are generic over it, so a second kind of record (Insights
    events) goes through the same decoder, placement and writer.
    """

    name: str
    """The table's folder under the destination, e.g. ``events``."""
    record_fields: tuple[Field, ...]

    @cached_property
    def root(self) -> Struct:
        return Struct(self.record_fields)

    @property
    def columns(self) -> tuple[Field, ...]:
        return self.record_fields + DERIVED_FIELDS

    def __hash__(self) -> int:
        # Schemas key cached lookups made per document (the decoders, per object): the
        # generated hash walked every field each time, 65 µs, 1.4% of a run. Equal schemas
        # have equal names, so this is a valid hash.
        return hash(self.name)


EVENTS = TableSchema("events", RECORD_FIELDS)
"""The API events table: the standard Athena CloudTrail table's columns and more."""

PARTITION_KEYS: tuple[str, ...] = ("region", "year", "month", "day")
"""Hive partition columns: in the path, not in the files; all zero-padded strings."""

SORT_COLUMN = EVENT_TIMESTAMP.name
"""Rows are sorted by this column within a file, so min/max statistics prune time ranges."""

DEDUP_COLUMN = "eventid"
"""An event is the same event when its eventID is the same (CloudTrail redelivers)."""
