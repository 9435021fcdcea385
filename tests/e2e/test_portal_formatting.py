"""The portal's one formatting (gateway/web/static/portal.js), in headless Chromium on a portal
page: money with the currency's symbol and its decimals as Intl knows them (JPY and XOF have
none, KWD three), an unknown code as the server writes it ("QQQ 1.00"), a negative amount; a
date as its UTC day and a time in the browser's zone with the zone's name, under a time zone
other than UTC (CDP `Emulation.setTimezoneOverride`).
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.e2e

# runs in the page: imports the page's own portal.js (the same module instance) and hands back
# each call's result; `arguments[0]` is the list of [function, ...args]
CALLS = """
const [calls, done] = [arguments[0], arguments[arguments.length - 1]];
import("/static/portal.js").then((portal) => {
  const out = calls.map(([name, ...args]) => portal[name](...args));
  const intl = (amount, currency) => new Intl.NumberFormat(portal.USER_LOCALE,
    { style: "currency", currency }).format(amount);
  done({ out, locale: portal.USER_LOCALE, xof: intl(123500, "XOF"),
         zone: Intl.DateTimeFormat().resolvedOptions().timeZone });
}).catch((error) => done({ error: String(error) }));
"""


def run(ui, calls: list[list[Any]]) -> dict[str, Any]:
    """The results of portal.js `calls` in the page, with spaces made plain."""
    answer = ui.driver.execute_async_script(CALLS, calls)
    assert "error" not in answer, answer
    answer["out"] = [plain(text) for text in answer["out"]]
    answer["xof"] = plain(answer["xof"])
    return answer


def plain(text: str) -> str:
    """`text` with Intl's no-break spaces (U+00A0, U+202F) as plain ones."""
    return text.replace("\u00a0", " ").replace("\u202f", " ")


@pytest.fixture
def ui(browser):
    browser.reset()
    browser.open("/login")  # a portal page: it loads portal.js itself
    browser.visible("#login-form")
    yield browser
    browser.driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": ""})


def test_money_has_the_currencys_symbol_and_decimals(ui):
    answer = run(
        ui,
        [
            ["formatMoney", 245000, "EUR"],
            ["formatMoney", 5000, "JPY"],
            ["formatMoney", 245000, "CHF"],
            ["formatMoney", 123500, "XOF"],
            ["formatMoney", 1234567, "KWD"],
            ["formatMoney", 100, "QQQ"],
            ["formatMoney", 100, "xxx"],
            ["formatMoney", -1999, "EUR"],
            ["formatMoney", "123456789012345678", "EUR"],
            ["formatMoney", None, "EUR"],
            ["amountOf", {"amount": 5000, "currency": "JPY", "amount_formatted": "JPY 5,000"}],
        ],
    )
    assert answer["locale"].startswith("en"), answer  # the browser's locale (--lang=en-US)
    eur, jpy, chf, xof, kwd, unknown, no_symbol, negative, big, missing, item = answer["out"]
    assert eur == "€2,450.00"
    assert jpy == "¥5,000"  # no decimals
    assert chf == "CHF 2,450.00"  # no symbol: the code and a space
    # XOF has no minor unit (a table of exceptions forgot it): 1,235 francs, not 1,235.00
    assert "123,500" in xof and "." not in xof, xof
    assert xof == answer["xof"], answer
    assert kwd == "KWD 1,234.567"  # three decimals
    assert unknown == "QQQ 1.00"  # a code Intl does not know: as the server writes it
    assert no_symbol == "XXX 1.00"  # a code Intl knows but has no symbol for
    assert negative == "-€19.99"
    assert big == "€1,234,567,890,123,456.78"  # integer arithmetic: no float rounds a cent
    assert missing == "—"
    # an API item's amount is formatted here, never the server's English `amount_formatted`
    assert item == "¥5,000"


def test_dates_are_utc_days_and_times_are_in_the_browsers_zone(ui):
    ui.driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "America/New_York"})
    # 03:00 UTC on Dec 8 is 10 PM on Dec 7 in New York
    moment = "2026-12-08T03:00:00Z"
    answer = run(
        ui,
        [
            ["formatDate", moment],
            ["formatDateTime", moment],
            ["formatDateTime", "2026-07-01T16:05:00Z"],
            ["formatDate", None],
            ["formatDateTime", "not a time"],
        ],
    )
    assert answer["zone"] == "America/New_York", answer
    day, winter, summer, none, garbled = answer["out"]
    assert day == "Dec 8, 2026"  # a date (an expiry) is its UTC day, in any zone
    assert winter == "Dec 7, 2026, 10:00 PM EST"
    assert summer == "Jul 1, 2026, 12:05 PM EDT"
    assert none == "—" and garbled == "—"

    ui.driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Kolkata"})
    day, india = run(ui, [["formatDate", moment], ["formatDateTime", moment]])["out"]
    assert day == "Dec 8, 2026"
    assert india == "Dec 8, 2026, 8:30 AM GMT+5:30"
