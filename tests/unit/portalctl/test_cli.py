"""portalctl in-process: each command's RPC call, its request keys, and how it fails.

The bus is replaced by a fake standalone client (the one seam `portalctl.cli` uses); what
the services answer is scripted per method. The real commands against the running suite are
in tests/e2e/test_staff_tools.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from amqp.exceptions import AccessRefused

from common.errors import PortalError, ServiceUnavailable
from portalctl import cli
from portalctl.errors import one_line

Answer = Any | Callable[..., Any]


class FakeBus:
    """Records every call with the context data it carried; answers from `answers`."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.answers: dict[str, Answer] = {}
        self.default: Answer = {"ok": True}
        self.clients = 0

    @contextmanager
    def standalone_client(
        self, timeout: float | None = None, uri: str | None = None, context_data: dict | None = None
    ) -> Iterator[Any]:
        self.clients += 1
        bus = self

        class Client:
            def call(self, service: str, method: str, *args: Any, **kwargs: Any) -> Any:
                bus.calls.append(
                    {
                        "method": f"{service}.{method}",
                        "args": args,
                        "kwargs": kwargs,
                        "request_key": dict(context_data or {}).get("request_key"),
                    }
                )
                answer = bus.answers.get(f"{service}.{method}", bus.default)
                if isinstance(answer, BaseException):
                    raise answer
                return answer(*args, **kwargs) if callable(answer) else answer

        yield Client()


@pytest.fixture
def bus(monkeypatch: pytest.MonkeyPatch) -> FakeBus:
    fake = FakeBus()
    monkeypatch.setattr(cli, "standalone_client", fake.standalone_client)
    return fake


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exit:
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


def one_call(bus: FakeBus) -> tuple[str, tuple, dict]:
    [call] = bus.calls
    return call["method"], call["args"], call["kwargs"]


# --- each command sends what the services' contract names ----------------------------------

COMMANDS = [
    (
        ["product", "create", "--code", " CAD-PRO ", "--name", "CAD Pro"],
        ("licensing.create_product", ({"code": "cad-pro", "name": "CAD Pro"},), {}),
    ),
    (["product", "list"], ("licensing.list_products", (), {})),
    (["product", "list", "--all"], ("licensing.list_products", (), {"include_archived": True})),
    (["product", "show", "CAD-PRO"], ("licensing.get_product", ("cad-pro",), {})),
    (["product", "archive", "CAD-PRO"], ("licensing.archive_product", ("cad-pro",), {})),
    (["product", "unarchive", "cad-pro"], ("licensing.unarchive_product", ("cad-pro",), {})),
    (
        [
            "plan",
            "create",
            "--code",
            "CAD-PRO-Y",
            "--product",
            "CAD-PRO",
            "--amount",
            "120.00",
            "--currency",
            "EUR",
            "--interval",
            "year",
        ],
        (
            "billing.create_plan",
            (
                {
                    "code": "cad-pro-y",
                    "product_code": "cad-pro",
                    "amount": 12000,
                    "currency": "EUR",
                    "interval": "year",
                },
            ),
            {},
        ),
    ),
    (
        [
            "plan",
            "create",
            "--code",
            "p",
            "--product",
            "x",
            "--amount",
            "4900",
            "--currency",
            "eur",
            "--interval",
            "month",
        ],
        (
            "billing.create_plan",
            (
                {
                    "code": "p",
                    "product_code": "x",
                    "amount": 4900,
                    "currency": "eur",
                    "interval": "month",
                },
            ),
            {},
        ),
    ),
    (["plan", "list"], ("billing.list_plans", (False,), {})),
    (["plan", "archive", "CAD-PRO-Y"], ("billing.archive_plan", ("cad-pro-y",), {})),
    (["plan", "unarchive", "CAD-PRO-Y"], ("billing.unarchive_plan", ("cad-pro-y",), {})),
    (["license", "suspend", "l-edpq-yvv2"], ("licensing.suspend_license", ("L-EDPQ-YVV2",), {})),
    (
        ["license", "suspend", "L-EDPQ-YVV2", "--reason", " Invoice 2026-17 unpaid "],
        ("licensing.suspend_license", ("L-EDPQ-YVV2", "Invoice 2026-17 unpaid"), {}),
    ),
    (["license", "resume", " l-edpq-yvv2"], ("licensing.resume_license", ("L-EDPQ-YVV2",), {})),
    (
        ["license", "extend", "L-EDPQ-YVV2", "--until", "2028-12-31"],
        ("licensing.extend_license", ("L-EDPQ-YVV2", "2028-12-31"), {}),
    ),
    (
        ["license", "extend", "L-EDPQ-YVV2", "--until", "2020-01-01", "--force"],
        ("licensing.extend_license", ("L-EDPQ-YVV2", "2020-01-01"), {"force": True}),
    ),
    (["license", "list", "--customer", "c0559442"], ("licensing.list_licenses", ("C0559442",), {})),
    (
        ["company", "update", "c0559442", "--email", "new@acme.test", "--contact-name", "Bo"],
        (
            "auth.update_company",
            ("C0559442", {"contact_email": "new@acme.test", "contact_name": "Bo"}),
            {},
        ),
    ),
    (
        ["company", "update", "C1", "--name", "Acme AG"],
        ("auth.update_company", ("C1", {"name": "Acme AG"}), {}),
    ),
    (["company", "resend-invite", " c0559442 "], ("auth.resend_invite", ("C0559442",), {})),
    (["company", "show", "c0559442"], ("auth.get_company", ("c0559442",), {})),
    (["company", "show", " Ada@Acme.test "], ("auth.get_company", ("Ada@Acme.test",), {})),
    (
        ["payment", "list"],
        (
            "billing.list_all_payments",
            (),
            {"status": None, "customer_id": None, "limit": 50, "before": None},
        ),
    ),
    (
        [
            "payment",
            "list",
            "--status",
            "refunded",
            "--customer",
            "c0559442",
            "--limit",
            "200",
            "--before",
            "r-2026-000123",
        ],
        (
            "billing.list_all_payments",
            (),
            {
                "status": "refunded",
                "customer_id": "C0559442",
                "limit": 200,
                "before": "R-2026-000123",
            },
        ),
    ),
    (
        [
            "payment",
            "record-offline",
            "--customer",
            "c1",
            "--amount",
            "1200.5",
            "--currency",
            "EUR",
            "--description",
            "Phone order",
        ],
        (
            "billing.record_offline_payment",
            (
                {
                    "customer_id": "C1",
                    "amount": 120050,
                    "currency": "EUR",
                    "description": "Phone order",
                },
            ),
            {},
        ),
    ),
    (
        [
            "payment",
            "record-offline",
            "--customer",
            "C1",
            "--amount",
            "5000",
            "--currency",
            "JPY",
            "--description",
            "x",
        ],
        (
            "billing.record_offline_payment",
            ({"customer_id": "C1", "amount": 5000, "currency": "JPY", "description": "x"},),
            {},
        ),
    ),
    (["payment", "receipt", "r-2026-000001"], ("billing.get_receipt", ("R-2026-000001",), {})),
]


@pytest.mark.parametrize(
    "argv, expected", COMMANDS, ids=[" ".join(argv)[:60] for argv, _ in COMMANDS]
)
def test_each_command_makes_its_call(bus, capsys, argv, expected) -> None:
    code, out, err = run(capsys, *argv, "--json")
    assert (code, err) == (0, "")
    assert one_call(bus) == expected
    json.loads(out)  # exactly one JSON document


def test_license_issue_sends_force_only_when_asked_and_shows_the_license(bus, capsys) -> None:
    bus.answers["licensing.issue_license"] = {"license_id": "L-AAAA-BBBB"}
    bus.answers["licensing.get_license"] = {"license_id": "L-AAAA-BBBB", "seats": 2}
    argv = ["license", "issue", "--customer", " c0559442", "--product", "CAD-PRO", "--seats", "2"]

    code, out, _ = run(capsys, *argv, "--expires", "2020-01-01", "--json")
    assert code == 0 and json.loads(out) == {"license_id": "L-AAAA-BBBB", "seats": 2}
    issued, shown = bus.calls
    assert issued["args"] == (
        {"customer_id": "C0559442", "product": "cad-pro", "seats": 2, "expires_at": "2020-01-01"},
    )
    assert shown["method"] == "licensing.get_license" and shown["args"] == ("L-AAAA-BBBB",)

    bus.calls.clear()
    run(capsys, *argv, "--force", "--json")
    assert bus.calls[0]["args"][0] == {
        "customer_id": "C0559442",
        "product": "cad-pro",
        "seats": 2,
        "expires_at": None,
        "force": True,
    }


# --- request keys ---------------------------------------------------------------------------


def test_one_request_key_per_run_and_a_new_one_for_the_next_run(bus, capsys) -> None:
    bus.answers["licensing.issue_license"] = {"license_id": "L-AAAA-BBBB"}
    argv = ["license", "issue", "--customer", "C1", "--product", "p", "--seats", "1"]
    run(capsys, *argv)
    run(capsys, *argv)
    first, first_show, second, _ = bus.calls
    assert first["request_key"] and len(first["request_key"]) == 32
    assert first_show["request_key"] == first["request_key"]
    assert second["request_key"] != first["request_key"]
    assert bus.clients == 2  # one connection per run


def test_a_command_that_calls_nothing_connects_to_nothing(bus, capsys) -> None:
    code, _, _ = run(capsys, "company", "update", "C1")
    assert code == 1 and bus.clients == 0


# --- failures: one line with the fix, non-zero, no traceback -------------------------------


@pytest.mark.parametrize(
    "argv, error, expected",
    [
        (
            [
                "license",
                "issue",
                "--customer",
                "C1",
                "--product",
                "p",
                "--seats",
                "1",
                "--expires",
                "2020-01-01",
            ],
            PortalError("The license would already be expired.", code="expires_in_past"),
            "portalctl: expires_in_past: The license would already be expired. Pass --force",
        ),
        (
            ["license", "extend", "L-1", "--until", "2020-01-01"],
            PortalError("Earlier than 2027-01-01.", code="extension_shortens"),
            "portalctl: extension_shortens: Earlier than 2027-01-01. Pass --force",
        ),
        (
            ["license", "extend", "L-1", "--until", "2030-01-01"],
            PortalError("Perpetual.", code="license_is_perpetual"),
            "portalctl: license_is_perpetual: Perpetual. Pass --force",
        ),
        (
            [
                "plan",
                "create",
                "--code",
                "p",
                "--product",
                "nope",
                "--amount",
                "1",
                "--currency",
                "EUR",
                "--interval",
                "year",
            ],
            PortalError("No product nope.", code="product_not_found"),
            "portalctl: product_not_found: No product nope. `portalctl product list --all`",
        ),
        (
            ["license", "issue", "--customer", "C1", "--product", "p", "--seats", "1"],
            PortalError("Archived.", code="product_archived"),
            "portalctl: product_archived: Archived. `portalctl product unarchive CODE` puts it "
            "back on sale; or pass --force",
        ),
        (
            [
                "plan",
                "create",
                "--code",
                "p",
                "--product",
                "old",
                "--amount",
                "1",
                "--currency",
                "EUR",
                "--interval",
                "year",
            ],
            PortalError("Archived.", code="product_archived"),
            "portalctl: product_archived: Archived. `portalctl product unarchive CODE` puts it "
            "back on sale.",
        ),
        (
            ["company", "resend-invite", "C1"],
            PortalError("It has a password.", code="password_already_set"),
            "portalctl: password_already_set: It has a password.",
        ),
        (
            ["company", "show", "x@y.test"],
            ServiceUnavailable("The auth service did not answer in time."),
            "portalctl: service_unavailable: The auth service did not answer in time. Check that",
        ),
        (
            ["product", "create", "--code", "a b", "--name", "x"],
            PortalError(
                "Invalid value for: code.",
                code="validation_error",
                details={"fields": {"code": ["Use letters,\ndigits."]}},
            ),
            "portalctl: validation_error: Invalid value for: code. (code: Use letters, digits.)",
        ),
    ],
    ids=lambda value: value.split(":")[1].strip() if isinstance(value, str) else "",
)
def test_an_expected_error_is_one_line_with_the_fix(bus, capsys, argv, error, expected) -> None:
    bus.default = error
    code, out, err = run(capsys, *argv, "--json")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith(expected), err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "amount, currency, problem",
    [
        ("1.005", "EUR", "EUR has 2 decimals"),
        ("5000.0", "JPY", "JPY has 0 decimals"),
        ("12,00", "EUR", "invalid amount"),
        ("-5", "EUR", "invalid amount"),
    ],
)
def test_an_amount_the_currency_cannot_hold_is_refused_before_any_call(
    bus, capsys, amount, currency, problem
) -> None:
    code, _, err = run(
        capsys,
        "payment",
        "record-offline",
        "--customer",
        "C1",
        "--amount",
        amount,
        "--currency",
        currency,
        "--description",
        "x",
    )
    assert code == 1 and bus.calls == []
    assert err.startswith("portalctl: invalid_amount: --amount:") and problem in err
    assert "e.g. 120.00" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "argv, problem",
    [
        (["company", "update", "C1"], "nothing_to_change"),
        (["payment", "list", "--limit", "500"], "--limit"),
        (["payment", "list", "--status", "lost"], "--status"),
        (["license", "suspend", "L-1", "--reason", "   "], "--reason"),
        (["license", "suspend", "L-1", "--reason", "x" * 501], "--reason"),
        (["license", "extend", "L-1", "--until", "soon"], "YYYY-MM-DD"),
        (["license", "issue", "--customer", "C1"], "required"),
        (["plan", "retire", "p"], "invalid choice"),
    ],
)
def test_bad_usage_is_one_line_and_non_zero(bus, capsys, argv, problem) -> None:
    code, out, err = run(capsys, *argv)
    assert code != 0 and out == "" and bus.calls == []
    assert problem in err and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_a_bus_that_refuses_the_user_is_one_line(monkeypatch, capsys) -> None:
    @contextmanager
    def refusing(*args: Any, **kwargs: Any) -> Iterator[Any]:
        raise AccessRefused("(403) ACCESS_REFUSED - Login was refused")
        yield

    monkeypatch.setattr(cli, "standalone_client", refusing)
    monkeypatch.setenv("AMQP_URI", "amqp://staff:secret@rabbit.test:5672/portal")
    code, out, err = run(capsys, "product", "list", "--json")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("portalctl: bus_refused: RabbitMQ at amqp://staff:***@rabbit.test")
    assert "ACCESS_REFUSED" in err and "Check AMQP_URI" in err and "secret" not in err


def test_fields_nested_in_a_validation_error_are_named_by_their_path() -> None:
    error = PortalError(
        "Invalid value for: card.",
        code="validation_error",
        details={"fields": {"card": {"number": ["Not a card number."]}, "seats": ["Too many."]}},
    )
    assert one_line(error) == (
        "portalctl: validation_error: Invalid value for: card. "
        "(card.number: Not a card number.; seats: Too many.)"
    )


def test_without_json_the_answer_is_readable_lines(bus, capsys) -> None:
    bus.default = {"code": "cad-pro", "name": "CAD Pro", "active": False}
    code, out, _ = run(capsys, "product", "archive", "cad-pro")
    assert code == 0
    assert out.splitlines() == ["code    cad-pro", "name    CAD Pro", "active  False"]
