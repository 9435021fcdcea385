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
                        "context": dict(context_data or {}),
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
    (["company", "users", " c0559442 "], ("auth.list_users", ("C0559442",), {})),
    (
        ["user", "invite", "c0559442", " Lin@Acme.test ", "--name", " Lin Wu ", "--role", "viewer"],
        (
            "auth.invite_user",
            ("C0559442", {"email": "Lin@Acme.test", "name": "Lin Wu", "role": "viewer"}),
            {},
        ),
    ),
    (
        ["user", "invite", "C1", "a@b.test", "--name", "A", "--role", "License-Admin"],
        (
            "auth.invite_user",
            ("C1", {"email": "a@b.test", "name": "A", "role": "license_admin"}),
            {},
        ),
    ),
    (["user", "show", " u-7kqx-m2pd "], ("auth.find_user", ("U-7KQX-M2PD",), {})),
    (["user", "show", " Lin@Acme.test"], ("auth.find_user", ("Lin@Acme.test",), {})),
]


@pytest.mark.parametrize(
    "argv, expected", COMMANDS, ids=[" ".join(argv)[:60] for argv, _ in COMMANDS]
)
def test_each_command_makes_its_call(bus, capsys, argv, expected) -> None:
    bus.answers["auth.list_users"] = {"users": []}
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


# --- users of companies ---------------------------------------------------------------------

FOUND = {
    "user_id": "U-7KQX-M2PD",
    "email": "lin@acme.test",
    "name": "Lin Wu",
    "role": "viewer",
    "status": "active",
    "contact": False,
    "customer_id": "C0559442",
}


@pytest.mark.parametrize(
    ("command", "method"), [("disable", "disable_user"), ("enable", "enable_user")]
)
@pytest.mark.parametrize("given", [" LIN@acme.test ", "u-7kqx-m2pd"])
def test_disable_and_enable_find_the_user_then_act_for_their_company(
    bus, capsys, command, method, given
) -> None:
    bus.answers["auth.find_user"] = FOUND
    answer = {key: value for key, value in FOUND.items() if key != "customer_id"}
    bus.answers[f"auth.{method}"] = {**answer, "status": "disabled"}
    code, out, err = run(capsys, "user", command, given, "--json")
    assert (code, err) == (0, "")
    found, changed = bus.calls
    expected = given.strip() if "@" in given else "U-7KQX-M2PD"
    assert (found["method"], found["args"]) == ("auth.find_user", (expected,))
    assert (changed["method"], changed["args"]) == (f"auth.{method}", ("C0559442", "U-7KQX-M2PD"))
    assert json.loads(out) == {**answer, "status": "disabled", "customer_id": "C0559442"}


def test_staff_calls_name_staff_and_the_login_as_the_actor(bus, capsys, monkeypatch) -> None:
    monkeypatch.setattr(cli.getpass, "getuser", lambda: "mia")
    bus.answers["auth.find_user"] = FOUND
    run(capsys, "user", "disable", "lin@acme.test")
    for call in bus.calls:
        assert call["context"]["actor"] == {"type": "staff", "name": "mia"}
        assert call["context"]["request_key"]


def test_without_a_login_name_staff_is_still_the_actor(bus, capsys, monkeypatch) -> None:
    def unknown() -> str:
        raise KeyError("getpwuid(): uid not found: 4242")

    monkeypatch.setattr(cli.getpass, "getuser", unknown)
    bus.answers["auth.list_users"] = {"users": []}
    run(capsys, "company", "users", "C1")
    assert bus.calls[0]["context"]["actor"] == {"type": "staff"}


USERS = {
    "users": [
        {
            "user_id": "U-AAAA-0001",
            "email": "ada@acme.test",
            "name": "Ada Lovelace",
            "role": "owner",
            "status": "active",
            "contact": True,
            "created_at": "2026-11-01T08:00:00+00:00",
            "last_login_at": "2026-12-02T09:30:12.5+00:00",
            "invitation_expires_at": None,
        },
        {
            "user_id": "U-AAAA-0002",
            "email": "lin@acme.test",
            "name": "Lin Wu",
            "role": "license_admin",
            "status": "invited",
            "contact": False,
            "created_at": "2026-12-02T09:00:00+00:00",
            "last_login_at": None,
            "invitation_expires_at": "2026-12-09T09:00:00+00:00",
        },
    ]
}


def test_company_users_is_a_table(bus, capsys) -> None:
    bus.answers["auth.list_users"] = USERS
    code, out, err = run(capsys, "company", "users", "c0559442")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["USER", "ID", "EMAIL", "NAME", "ROLE", "STATUS", "LAST", "LOGIN"]
    assert lines[1].split("  ")[0] == "U-AAAA-0001"
    assert "owner (contact)" in lines[1] and "2026-12-02 09:30 UTC" in lines[1]
    assert "license_admin" in lines[2] and "never" in lines[2]
    assert "invited until 2026-12-09 09:00 UTC" in lines[2]
    # the columns line up
    assert lines[1].index("ada@acme.test") == lines[0].index("EMAIL") == lines[2].index("lin@")


def test_company_users_with_json_is_auths_answer(bus, capsys) -> None:
    bus.answers["auth.list_users"] = USERS
    code, out, _ = run(capsys, "company", "users", "C0559442", "--json")
    assert code == 0 and json.loads(out) == USERS


def test_a_company_without_users_says_none(bus, capsys) -> None:
    bus.answers["auth.list_users"] = {"users": []}
    assert run(capsys, "company", "users", "C1")[1] == "(none)\n"


@pytest.mark.parametrize(
    "argv, error, expected",
    [
        (
            ["user", "disable", "ada@acme.test"],
            PortalError("The contact is always an owner.", code="contact_is_owner"),
            "portalctl: contact_is_owner: The contact is always an owner. To take this person's "
            "access away, make someone else the contact first (`portalctl company update "
            "CUSTOMER_ID --email NEW_EMAIL`).",
        ),
        (
            ["user", "disable", "U-AAAA-0003"],
            PortalError("No active owner would be left.", code="last_owner"),
            "portalctl: last_owner: No active owner would be left. The company would have no "
            "active owner left: `portalctl company users CUSTOMER_ID` shows its owners",
        ),
        (
            ["user", "enable", "nobody@acme.test"],
            PortalError("No such user.", code="user_not_found"),
            "portalctl: user_not_found: No such user. `portalctl company users CUSTOMER_ID` "
            "lists a company's users",
        ),
        (
            ["user", "invite", "C1", "ada@acme.test", "--name", "Ada", "--role", "owner"],
            PortalError("This email is taken.", code="email_taken"),
            "portalctl: email_taken: This email is taken. Every email belongs to one user in one "
            "company: `portalctl user show EMAIL` shows who has it.",
        ),
    ],
    ids=lambda value: value.split(":")[1].strip() if isinstance(value, str) else "",
)
def test_user_errors_are_one_line_with_the_fix(bus, capsys, argv, error, expected) -> None:
    bus.default = error
    code, out, err = run(capsys, *argv, "--json")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith(expected), err


def test_an_error_after_the_lookup_stops_there(bus, capsys) -> None:
    bus.answers["auth.find_user"] = FOUND
    bus.answers["auth.disable_user"] = PortalError("No owner left.", code="last_owner")
    code, _, err = run(capsys, "user", "disable", "lin@acme.test")
    assert code == 1 and err.startswith("portalctl: last_owner:")
    assert [call["method"] for call in bus.calls] == ["auth.find_user", "auth.disable_user"]


@pytest.mark.parametrize(
    "argv, problem",
    [
        (["user", "invite", "C1", "a@b.test", "--name", "A", "--role", "admin"], "invalid role"),
        (["user", "invite", "C1", "a@b.test", "--role", "viewer"], "--name"),
        (["user", "disable"], "EMAIL_OR_USER_ID"),
        (["company", "users"], "CUSTOMER_ID"),
    ],
)
def test_bad_user_commands_are_one_line_and_call_nothing(bus, capsys, argv, problem) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and bus.calls == []
    assert problem in err and err.count("\n") == 1, err
