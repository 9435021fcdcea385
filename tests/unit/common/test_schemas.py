"""common.schemas.load: every input is validated and bad input names its field."""

from __future__ import annotations

import pytest
from marshmallow import validate

from common.errors import ValidationFailed
from common.schemas import (
    Code,
    CustomerId,
    LicenseId,
    StrictSchema,
    Text,
    code_arg,
    customer_id_arg,
    license_id_arg,
    load,
    optional_customer_id_arg,
    optional_text_arg,
    receipt_number_arg,
    text_arg,
)


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


def test_text_arg_passes_a_plain_string_through() -> None:
    assert text_arg("LIC-0001", "license_id") == "LIC-0001"
    assert text_arg("x" * 64, "license_id") == "x" * 64
    assert text_arg("x" * 200, "note", max_length=200) == "x" * 200


@pytest.mark.parametrize(
    "value", [None, 42, ["LIC-1"], {"id": 1}, b"LIC-1", "", "x" * 65, "a\x00b"]
)
def test_text_arg_refuses_anything_else_naming_the_argument(value) -> None:
    with pytest.raises(ValidationFailed) as caught:
        text_arg(value, "license_id")
    assert caught.value.code == "validation_error"
    assert caught.value.details == {
        "fields": {"license_id": ["Expected a string of 1 to 64 characters."]}
    }


def test_optional_text_arg_lets_none_through_and_checks_the_rest() -> None:
    assert optional_text_arg(None, "customer_id") is None
    assert optional_text_arg("C1234567", "customer_id") == "C1234567"
    with pytest.raises(ValidationFailed):
        optional_text_arg("", "customer_id")


# --- identifiers in one canonical form --------------------------------------------------------


class _Ids(StrictSchema):
    customer_id = CustomerId()
    license_id = LicenseId(required=False, load_default=None, allow_none=True)
    product = Code()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            {"customer_id": " c0559442 ", "license_id": "l-edpq-yvv2", "product": " CAD-PRO "},
            {"customer_id": "C0559442", "license_id": "L-EDPQ-YVV2", "product": "cad-pro"},
        ),
        (
            {"customer_id": "C0559442", "product": "cad.pro_2"},
            {"customer_id": "C0559442", "license_id": None, "product": "cad.pro_2"},
        ),
    ],
)
def test_identifier_fields_load_their_canonical_form(given, expected) -> None:
    assert load(_Ids(), given) == expected


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"customer_id": "   ", "product": "a"}, "customer_id"),
        ({"customer_id": "C1", "product": "a b"}, "product"),
        ({"customer_id": "C1", "product": "-lead"}, "product"),
        ({"customer_id": "C1", "product": "x" * 65}, "product"),
        ({"customer_id": "C1\x00", "product": "a"}, "customer_id"),
        ({"customer_id": 7, "product": "a"}, "customer_id"),
        ({"customer_id": "ada@acme.test", "product": "a"}, "customer_id"),
        ({"customer_id": "C1", "license_id": "L 1", "product": "a"}, "license_id"),
    ],
)
def test_identifier_fields_name_what_is_wrong(given, field) -> None:
    with pytest.raises(ValidationFailed) as raised:
        load(_Ids(), given)
    assert field in raised.value.details["fields"]


def test_identifier_arguments_are_canonical_and_refuse_blanks() -> None:
    assert customer_id_arg(" c0559442") == "C0559442"
    assert optional_customer_id_arg(None) is None
    assert license_id_arg("l-edpq-yvv2 ") == "L-EDPQ-YVV2"
    assert receipt_number_arg("r-2026-000001") == "R-2026-000001"
    assert code_arg(" CAD-PRO ") == "cad-pro"
    for bad, check in [
        ("  ", customer_id_arg),
        ("ada@acme.test", customer_id_arg),
        ("a b", code_arg),
        (None, license_id_arg),
    ]:
        with pytest.raises(ValidationFailed):
            check(bad)
