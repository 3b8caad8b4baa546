"""The tests' own value check tells JSON types apart, as the table must keep them."""

from __future__ import annotations

import pytest

from tests.helpers import assert_row_preserves, same_json, same_text


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("true", 1),  # a number rendered as a boolean
        ("1", True),
        ("1.0", 1),  # an int rendered as a float
        ("1", 1.0),
        ('{"a":true}', {"a": 1}),
        ("[1,2]", [1.0, 2]),
        ('{"a":1,"b":2}', {"a": 1}),
        ("null", 0),
    ],
)
def test_a_value_of_another_json_type_is_not_the_same(column, value):
    assert not same_text(column, value)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("true", True),
        ("1", 1),
        ("1.5", 1.5),
        ('{"a":[1,2.5,false,null]}', {"a": [1, 2.5, False, None]}),
    ],
)
def test_the_same_json_is_the_same(column, value):
    assert same_text(column, value)
    assert same_json(value, value)


def test_a_row_whose_unmapped_value_changed_type_does_not_preserve_its_record():
    record = {"eventID": "e1", "newField": 1}
    assert_row_preserves(record, {"eventid": "e1", "unmapped": '{"newField":1}'})
    with pytest.raises(AssertionError, match="unmapped value differs"):
        assert_row_preserves(record, {"eventid": "e1", "unmapped": '{"newField":true}'})
