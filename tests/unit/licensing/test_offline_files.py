"""Offline activation's files as pure functions (services/licensing/offline.py): every
malformed request and proof is refused naming what is wrong and which field, in words."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.licensing import offline
from services.licensing.crypto import OfflineSecrets
from services.licensing.offline import FileProblem

NONCE = "n" * 22
SECRET = OfflineSecrets(b"unit-test-secret").secret("L-7KQX-M2PD", "0f3c-inst", NONCE)
REQUEST_TEXT_FIELDS = ("license_id", "installation_id", "machine_name", "product")
PROOF_TEXT_FIELDS = ("license_id", "installation_id")


def request(**changes: Any) -> dict[str, Any]:
    body = {
        "type": "activation_request",
        "version": 1,
        "license_id": "l-7kqx-m2pd",
        "installation_id": "0f3c-inst",
        "machine_name": "CAD-WS-07",
        "product": "CADPRO",
        "requested_at": "2026-12-02T10:00:00+00:00",
        "nonce": NONCE,
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not DROP}


def proof(**changes: Any) -> dict[str, Any]:
    body = {
        "type": "deactivation_proof",
        "version": 1,
        "license_id": "L-7KQX-M2PD",
        "installation_id": "0f3c-inst",
        "deactivated_at": "2026-12-09T08:00:00Z",
        "secret": SECRET,
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not DROP}


DROP = object()


def problem_of(parse, text: Any) -> FileProblem:
    with pytest.raises(FileProblem) as caught:
        parse(text)
    assert caught.value.problem  # always in words
    return caught.value


def test_a_request_is_read_in_canonical_form() -> None:
    parsed = offline.parse_request(json.dumps(request()))
    assert parsed.license_id == "L-7KQX-M2PD"
    assert parsed.product == "cadpro"
    assert parsed.installation_id == "0f3c-inst" and parsed.machine_name == "CAD-WS-07"
    assert parsed.nonce == NONCE
    assert parsed.requested_at.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("", None, "empty"),
        ("   \n", None, "empty"),
        ("not json at all", None, "not valid JSON"),
        (json.dumps(request())[:-20], None, "truncated"),
        ("[1, 2]", None, "one JSON object"),
        ('"a string"', None, "one JSON object"),
        ("null", None, "one JSON object"),
        (json.dumps(request(type="activation_response")), "type", "not an activation request"),
        (json.dumps(request(type=DROP)), "type", "not an activation request"),
        (json.dumps(request(version=2)), "version", "not supported"),
        (json.dumps(request(version="1")), "version", "whole number"),
        (json.dumps(request(version=True)), "version", "whole number"),
        (json.dumps(request(version=DROP)), "version", "whole number"),
        (json.dumps(request(nonce=DROP)), "nonce", "missing"),
        (json.dumps(request(license_id=DROP)), "license_id", "missing"),
        (json.dumps(request(installation_id=DROP)), "installation_id", "missing"),
        (json.dumps(request(machine_name=DROP)), "machine_name", "missing"),
        (json.dumps(request(product=DROP)), "product", "missing"),
        (json.dumps(request(requested_at=DROP)), "requested_at", "missing"),
        (json.dumps(request(password="x")), "password", "not expected"),
        (json.dumps(request(license_id=7)), "license_id", "must be text"),
        (json.dumps(request(installation_id=None)), "installation_id", "must be text"),
        (json.dumps(request(machine_name=["PC"])), "machine_name", "must be text"),
        (json.dumps(request(license_id="")), "license_id", "empty"),
        (json.dumps(request(installation_id="  ")), "installation_id", "empty"),
        (json.dumps(request(installation_id="x" * 129)), "installation_id", "longer than 128"),
        (json.dumps(request(machine_name="m" * 201)), "machine_name", "longer than 200"),
        (json.dumps(request(product="p" * 65)), "product", "longer than 64"),
        (json.dumps(request(license_id="L" * 65)), "license_id", "longer than 64"),
        (json.dumps(request(machine_name="PC\r\nBcc: x")), "machine_name", "control characters"),
        (json.dumps(request(requested_at="yesterday")), "requested_at", "ISO 8601"),
        (json.dumps(request(requested_at="2026-12-02T10:00:00")), "requested_at", "time zone"),
        (json.dumps(request(requested_at=1764669600)), "requested_at", "must be text"),
        (json.dumps(request(nonce="short")), "nonce", "URL-safe"),
        (json.dumps(request(nonce="n" * 21 + "/")), "nonce", "URL-safe"),
        (json.dumps(request(nonce="n" * 129)), "nonce", "longer than 128"),
        (json.dumps(request()).replace('"nonce"', '"product": "x", "nonce"'), "product", "more"),
    ],
)
def test_every_malformed_request_names_its_problem(text: str, field: str | None, words) -> None:
    problem = problem_of(offline.parse_request, text)
    assert problem.field == field, problem.problem
    assert words in problem.problem
    details = problem.details()
    assert details["problem"] == problem.problem
    assert details.get("field") == field


@pytest.mark.parametrize("value", [None, 42, b"{}", {"type": "activation_request"}])
def test_a_request_must_be_text(value: Any) -> None:
    assert "text of the file" in problem_of(offline.parse_request, value).problem


def test_a_request_over_16_kib_is_refused_before_it_is_read() -> None:
    padded = json.dumps(request(machine_name="x")) + " " * (16 * 1024)
    assert "16 KiB" in problem_of(offline.parse_request, padded).problem
    # counted in bytes of UTF-8, not characters
    wide = json.dumps(request(machine_name="é")) + " " * (16 * 1024 - 200) + "é" * 150
    assert "16 KiB" in problem_of(offline.parse_request, wide).problem


def test_lone_surrogates_and_deep_nesting_are_malformed_not_crashes() -> None:
    assert problem_of(offline.parse_request, "\udcff").problem
    assert problem_of(offline.parse_request, "[" * 5000 + "]" * 5000).problem


def escaped(body: dict[str, Any], field: str, raw: str) -> str:
    """`body` as JSON with `raw` (JSON escapes, e.g. `\\ud800`) inside `field`'s text, as a
    hostile or broken kit would write it (json.dumps would not)."""
    text = json.dumps({**body, field: "PLACEHOLDER"})
    return text.replace('"PLACEHOLDER"', f'"a{raw}b"')


@pytest.mark.parametrize("field", REQUEST_TEXT_FIELDS)
@pytest.mark.parametrize(
    ("raw", "words"),
    [("\\ud800", "lone surrogates"), ("\\udfff", "lone surrogates"), ("\\u0000", "NUL")],
)
def test_nul_and_lone_surrogates_in_a_request_are_named(field: str, raw: str, words) -> None:
    problem = problem_of(offline.parse_request, escaped(request(), field, raw))
    assert problem.field == field
    assert words in problem.problem and field in problem.problem


@pytest.mark.parametrize("field", PROOF_TEXT_FIELDS)
@pytest.mark.parametrize(("raw", "words"), [("\\ud800", "lone surrogates"), ("\\u0000", "NUL")])
def test_nul_and_lone_surrogates_in_a_proof_are_named(field: str, raw: str, words) -> None:
    # the proof's installation ID admits the control characters the online API stores,
    # never NUL (no database takes it)
    problem = problem_of(offline.parse_proof, escaped(proof(), field, raw))
    assert problem.field == field
    assert words in problem.problem


def test_a_proofs_installation_id_may_hold_other_control_characters() -> None:
    parsed = offline.parse_proof(json.dumps(proof(installation_id="inst\tone")))
    assert parsed.installation_id == "inst\tone"


def test_an_unexpected_or_repeated_long_field_name_is_cut_to_64_characters() -> None:
    long = "k" * 7000
    unexpected = json.dumps(request()).replace('"nonce"', f'"{long}": 1, "nonce"')
    repeated = json.dumps(request()).replace('"nonce"', f'"{long}": 1, "{long}": 2, "nonce"')
    for text in (unexpected, repeated):
        assert len(text.encode()) <= offline.FILE_MAX_BYTES
        problem = problem_of(offline.parse_request, text)
        assert problem.field == "k" * 64
        assert "k" * 65 not in problem.problem and len(problem.problem) < 120


def test_a_request_for_another_license_or_product_is_named() -> None:
    parsed = offline.parse_request(json.dumps(request()))
    assert offline.request_problem(parsed, "L-7KQX-M2PD", "cadpro") is None
    other = offline.request_problem(parsed, "L-2222-2222", "cadpro")
    assert other.field == "license_id"
    assert other.problem == "This request is for license L-7KQX-M2PD, not L-2222-2222."
    assert offline.request_problem(parsed, "L-7KQX-M2PD", "viewer").field == "product"


def test_a_proof_is_read() -> None:
    parsed = offline.parse_proof(json.dumps(proof()))
    assert parsed.license_id == "L-7KQX-M2PD" and parsed.secret == SECRET


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("{", None, "not valid JSON"),
        (json.dumps(proof())[:40], None, "not valid JSON"),
        ("[]", None, "one JSON object"),
        (json.dumps(proof(type="activation_request")), "type", "not a deactivation proof"),
        (json.dumps(proof(version=0)), "version", "not supported"),
        (json.dumps(proof(secret=DROP)), "secret", "missing"),
        (json.dumps(proof(installation_id=DROP)), "installation_id", "missing"),
        (json.dumps(proof(deactivated_at=DROP)), "deactivated_at", "missing"),
        (json.dumps(proof(extra=1)), "extra", "not expected"),
        (json.dumps(proof(secret=SECRET[:-1])), "secret", "exactly 43"),
        (json.dumps(proof(secret=SECRET[:-1] + "=")), "secret", "URL-safe"),
        (json.dumps(proof(secret=123)), "secret", "must be text"),
        (json.dumps(proof(deactivated_at="2026-13-01T00:00:00Z")), "deactivated_at", "ISO"),
        (json.dumps(proof(license_id="")), "license_id", "empty"),
    ],
)
def test_every_malformed_proof_names_its_problem(text: str, field: str | None, words) -> None:
    problem = problem_of(offline.parse_proof, text)
    assert problem.field == field, problem.problem
    assert words in problem.problem


def test_only_a_secrets_hash_matches_it() -> None:
    secret = SECRET
    other = OfflineSecrets(b"unit-test-secret").secret("L-7KQX-M2PD", "0f3c-inst", "m" * 22)
    stored = offline.secret_hash(secret)
    assert len(stored) == 64 and secret not in stored
    assert offline.secret_matches(stored, secret)
    assert not offline.secret_matches(stored, other)
    assert not offline.secret_matches(None, secret)
    assert not offline.secret_matches("", secret)


def test_the_response_file_carries_the_nonce_certificate_and_secret() -> None:
    text = offline.response_text(
        license_id="L-7KQX-M2PD",
        installation_id="0f3c-inst",
        product="cadpro",
        nonce=NONCE,
        issued_at="2026-12-02T10:05:00+00:00",
        certificate="a.b.c",
        secret=SECRET,
    )
    assert len(text.encode()) < offline.FILE_MAX_BYTES
    assert json.loads(text) == {
        "type": "activation_response",
        "version": 1,
        "license_id": "L-7KQX-M2PD",
        "installation_id": "0f3c-inst",
        "product": "cadpro",
        "nonce": NONCE,
        "issued_at": "2026-12-02T10:05:00+00:00",
        "certificate": "a.b.c",
        "deactivation_secret": SECRET,
    }
