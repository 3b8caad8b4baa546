"""Property: for any record, every input value can be found in its output row."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.cloudtrail import RECORD_FIELDS, ArrayOf, Field, Struct
from tests.helpers import assert_row_preserves, json_values_strategy
from transforms.records import RecordRows, read_records, rows_to_frame

json_values = json_values_strategy(text=8, keys=6, width=3, leaves=8)


def object_of(fields: tuple[Field, ...], depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Objects mixing the schema's keys (with values of any shape) and unknown keys."""
    known: dict[str, st.SearchStrategy[Any]] = {}
    for field in fields:
        assert field.key is not None
        if isinstance(field.type, Struct) and depth < 3:
            known[field.key] = object_of(field.type.fields, depth + 1) | json_values
        elif isinstance(field.type, ArrayOf):
            known[field.key] = (
                st.lists(object_of(field.type.element.fields, depth + 1) | json_values, max_size=3)
                | json_values
            )
        else:
            known[field.key] = json_values
    chosen = st.fixed_dictionaries({}, optional=known)
    extra = st.dictionaries(st.text(max_size=10), json_values, max_size=2)
    return st.builds(lambda k, e: {**e, **k}, chosen, extra)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=object_of(RECORD_FIELDS), ascii_only=st.booleans())
def test_every_input_value_is_found_in_its_output_row(record, ascii_only):
    text = json.dumps(record, ensure_ascii=ascii_only).encode()
    decoded = RecordRows()
    read_records([msgspec.Raw(text)], "k", decoded)
    assert decoded.problems == []
    [row] = rows_to_frame(decoded).to_dicts()
    assert_row_preserves(json.loads(text), row)


@given(value=json_values)
def test_any_top_level_value_either_converts_or_is_reported(value):
    decoded = RecordRows()
    read_records([msgspec.Raw(json.dumps(value).encode())], "k", decoded)
    assert len(decoded) + len(decoded.problems) == 1
    assert (len(decoded) == 1) == isinstance(value, dict)
