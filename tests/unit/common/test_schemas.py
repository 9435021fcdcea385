"""common.schemas.load: every input is validated and bad input names its field."""

from __future__ import annotations

import pytest
from marshmallow import validate

from common.errors import ValidationFailed
from common.schemas import StrictSchema, Text, load


class Sample(StrictSchema):
    login = Text(20)
    note = Text(10, required=False)


@pytest.mark.parametrize("data", [["login"], "login", 42, 1.5, True, b"{}"])
def test_anything_but_an_object_is_a_validation_error(data) -> None:
    with pytest.raises(ValidationFailed) as caught:
        load(Sample(), data)
    assert caught.value.code == "validation_error"
    assert caught.value.details == {"fields": {"_schema": ["Expected a JSON object."]}}


def test_none_is_an_empty_object() -> None:
    with pytest.raises(ValidationFailed) as caught:
        load(Sample(), None)
    assert "login" in caught.value.details["fields"]


def test_a_valid_object_loads() -> None:
    assert load(Sample(), {"login": "ada"}) == {"login": "ada"}
    assert load(Sample(), {"login": "ada", "note": "hi"}) == {"login": "ada", "note": "hi"}


@pytest.mark.parametrize("value", ["ada\x00", "\x00", "a\x00b"])
def test_nul_characters_are_rejected(value: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        load(Sample(), {"login": value})
    assert list(caught.value.details["fields"]) == ["login"]


def test_unknown_fields_are_rejected_by_name() -> None:
    with pytest.raises(ValidationFailed) as caught:
        load(Sample(), {"login": "ada", "is_admin": True})
    assert list(caught.value.details["fields"]) == ["is_admin"]
    assert "is_admin" in caught.value.message


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "login"),
        ({"login": ""}, "login"),
        ({"login": "x" * 21}, "login"),
        ({"login": 5}, "login"),
        ({"login": "ada", "note": "x" * 11}, "note"),
    ],
)
def test_bounds_and_types_name_the_field(data: dict, field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        load(Sample(), data)
    assert list(caught.value.details["fields"]) == [field]


class WithExtraValidators(StrictSchema):
    colour = Text(10, validate=validate.OneOf(["red", "green"]))
    code = Text(10, validate=[validate.Regexp(r"^[a-z]+$")])
    note = Text(10, validate=validate.Length(min=2))


VALID = {"colour": "green", "code": "abc", "note": "hello"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"colour": "blue"}, "colour"),  # the extra validator
        ({"code": "ABC"}, "code"),  # the extra validator, given as a list
        ({"note": "a\x00"}, "note"),  # the built-in NUL check still applies
        ({"note": "a" * 11}, "note"),  # and so does the built-in length bound
        ({"note": "a"}, "note"),  # as well as the extra one
    ],
)
def test_extra_validators_add_to_the_built_in_ones(change: dict, field: str) -> None:
    assert load(WithExtraValidators(), VALID) == VALID
    with pytest.raises(ValidationFailed) as caught:
        load(WithExtraValidators(), {**VALID, **change})
    assert list(caught.value.details["fields"]) == [field]
