"""The sandbox provider: test cards, card checks, and idempotent charges and refunds in its
ledger."""

from __future__ import annotations

import pytest

from services.billing.providers import (
    Card,
    IdempotencyMismatch,
    InvalidCard,
    MemoryLedger,
    PaymentProvider,
    RefundRefused,
    SandboxProvider,
)


def card(number: str = "4242424242424242", cvc: str = "123") -> Card:
    return Card(number=number, exp_month=12, exp_year=2030, cvc=cvc)


@pytest.fixture
def provider() -> SandboxProvider:
    return SandboxProvider(MemoryLedger())


def test_the_sandbox_keeps_the_provider_interface(provider) -> None:
    assert isinstance(provider, PaymentProvider)


@pytest.mark.parametrize(
    ("number", "status", "code"),
    [
        ("4242424242424242", "succeeded", None),
        ("5555555555554444", "succeeded", None),
        ("4000000000000002", "declined", "card_declined"),
        ("4000000000009995", "declined", "insufficient_funds"),
    ],
)
def test_test_cards(provider, number, status, code) -> None:
    method = provider.tokenize(card(number))
    assert method.last4 == number[-4:]
    assert number not in method.token and number[-4:] not in method.token
    result = provider.charge(4900, "EUR", method.token, f"key-{number}")
    assert (result.status, result.decline_code) == (status, code)
    assert (result.amount, result.currency) == (4900, "EUR")


def test_tokens_never_hold_the_card(provider) -> None:
    method = provider.tokenize(card())
    assert (method.brand, method.last4, method.exp_month, method.exp_year) == (
        "visa",
        "4242",
        12,
        2030,
    )
    assert "4242424242424242" not in repr(card())
    assert "123" not in repr(card())


@pytest.mark.parametrize(
    ("number", "cvc", "field"),
    [("4242424242424241", "123", "number"), ("4242424242424242", "12", "cvc")],
)
def test_bad_card_details_name_the_field(provider, number, cvc, field) -> None:
    with pytest.raises(InvalidCard) as caught:
        provider.tokenize(card(number, cvc))
    assert caught.value.field == field


def test_a_retried_charge_never_charges_twice(provider) -> None:
    token = provider.tokenize(card()).token
    first = provider.charge(4900, "EUR", token, "billing-charge-1")
    again = provider.charge(4900, "EUR", token, "billing-charge-1")
    other = provider.charge(4900, "EUR", token, "billing-charge-2")
    assert first == again
    assert other.charge_id != first.charge_id
    assert len(provider.ledger.records) == 2


def test_a_reused_key_for_another_amount_is_refused(provider) -> None:
    token = provider.tokenize(card()).token
    provider.charge(4900, "EUR", token, "k")
    with pytest.raises(IdempotencyMismatch):
        provider.charge(5000, "EUR", token, "k")


def test_retrieve_finds_a_charge_from_another_instance_sharing_the_ledger() -> None:
    ledger = MemoryLedger()
    one, two = SandboxProvider(ledger), SandboxProvider(ledger)
    token = one.tokenize(card()).token
    assert two.retrieve("k") is None
    made = one.charge(100, "EUR", token, "k")
    assert two.retrieve("k") == made
    assert two.charge(100, "EUR", token, "k") == made


def test_a_lost_race_returns_the_winners_charge() -> None:
    """Two instances charging with one key at once: both get the one stored charge."""

    class RacingLedger(MemoryLedger):
        def get(self, key):
            return None  # both instances look before either has written

    ledger = RacingLedger()
    provider = SandboxProvider(ledger)
    token = provider.tokenize(card()).token
    first = provider.charge(100, "EUR", token, "k")
    second = provider.charge(100, "EUR", token, "k")
    assert first == second


# --- refunds and card checks --------------------------------------------------------------


def test_a_refund_gives_a_charge_back_once_per_key_and_once_per_charge(provider) -> None:
    token = provider.tokenize(card()).token
    charge = provider.charge(4900, "EUR", token, "billing-charge-1")
    first = provider.refund(charge.charge_id, 4900, "EUR", "billing-refund-1")
    again = provider.refund(charge.charge_id, 4900, "EUR", "billing-refund-1")
    other_key = provider.refund(charge.charge_id, 4900, "EUR", "billing-refund-x")
    assert first == again == other_key
    assert first.refund_id.startswith("re_sandbox_") and first.charge_id == charge.charge_id
    assert (first.status, first.amount, first.currency) == ("succeeded", 4900, "EUR")
    assert len(provider.ledger.refunds()) == 1 and len(provider.ledger.charges()) == 1
    # the refund is no charge: retrieve and charge by its key find none
    assert provider.retrieve("billing-refund-1") is None
    with pytest.raises(IdempotencyMismatch):
        provider.charge(4900, "EUR", token, "billing-refund-1")


@pytest.mark.parametrize(
    ("number", "amount", "currency", "words"),
    [
        ("4242424242424242", 5000, "EUR", "cannot refund"),
        ("4242424242424242", 4900, "USD", "cannot refund"),
        ("4000000000000002", 4900, "EUR", "was not paid"),
    ],
)
def test_a_refund_the_provider_cannot_make_is_refused(
    provider, number, amount, currency, words
) -> None:
    charge = provider.charge(4900, "EUR", provider.tokenize(card(number)).token, "c")
    with pytest.raises(RefundRefused, match=words):
        provider.refund(charge.charge_id, amount, currency, "r")
    with pytest.raises(RefundRefused, match="no charge"):
        provider.refund("ch_sandbox_unknown", 100, "EUR", "r2")
    assert provider.ledger.refunds() == []


def test_a_refund_retried_in_a_race_returns_the_first_refund() -> None:
    """Two instances refunding with one key at once: both get the one stored refund."""

    class RacingLedger(MemoryLedger):
        racing = False

        def get(self, key):
            return None if self.racing else super().get(key)

    ledger = RacingLedger()
    provider = SandboxProvider(ledger)
    charge = provider.charge(100, "EUR", provider.tokenize(card()).token, "c")
    ledger.racing = True
    first = provider.refund(charge.charge_id, 100, "EUR", "r1")
    second = provider.refund(charge.charge_id, 100, "EUR", "r1")
    assert first == second and len(ledger.refunds()) == 1


@pytest.mark.parametrize(
    ("number", "status", "code"),
    [
        ("5555555555554444", "succeeded", None),
        ("4000000000000002", "declined", "card_declined"),
        ("4000000000009995", "declined", "insufficient_funds"),
    ],
)
def test_a_card_check_is_a_zero_amount_authorization(provider, number, status, code) -> None:
    token = provider.tokenize(card(number)).token
    check = provider.authorize(token, "billing-auth-1")
    assert (check.status, check.decline_code, check.amount) == (status, code, 0)
    assert check.charge_id.startswith("au_sandbox_")
    assert provider.authorize(token, "billing-auth-1") == check
    assert provider.ledger.charges() == []  # nothing charged
    assert provider.retrieve("billing-auth-1") is None
