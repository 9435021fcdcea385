// Payment history: the receipts of portal purchases, newest first, a page at a time; each
// opens as the portal's printable receipt page. A refunded payment says so, with when and why.
import {
  $, amountOf, api, badge, busy, formatDate, formatDateTime, formatMoney, h, hide, loaded, showError,
} from "/static/portal.js";

// payments a page: 50, or the page's own `?limit=` (1 to 200, as the API takes)
const PAGE_SIZE = (() => {
  const asked = Number.parseInt(new URLSearchParams(window.location.search).get("limit"), 10);
  return asked >= 1 && asked <= 200 ? asked : 50;
})();
// why billing refunded a payment (an error code from licensing), in a customer's words
const REFUND_REASONS = {
  product_archived: "the product is no longer sold",
  product_not_found: "the product could not be delivered",
  license_not_found: "the license to renew was not found",
  license_suspended: "the license to renew is suspended",
  company_not_found: "the account could not be found",
  refunded_by_provider: "refunded by the vendor",
};

let nextBefore = null;

function refundNote(payment) {
  if (payment.status === "disputed") {
    const when = payment.disputed_at ? ` on ${formatDate(payment.disputed_at)}` : "";
    const lost = payment.dispute_status === "lost";
    return h("span", { class: "small refund-note block" }, lost
      ? `Reversed by the card's bank after a dispute${when}.`
      : `Disputed with the card's bank${when}: the license is suspended until the bank decides.`);
  }
  if (payment.status === "paid" && payment.refunded_amount) {
    return h("span", { class: "small refund-note block" },
      `Partly refunded to the card: ${formatMoney(payment.refunded_amount, payment.currency)}.`);
  }
  if (payment.status !== "refunded") return "";
  const reason = payment.refund_reason ? REFUND_REASONS[payment.refund_reason] || payment.refund_reason : "";
  const when = payment.refunded_at ? ` on ${formatDate(payment.refunded_at)}` : "";
  return h("span", { class: "small refund-note block" },
    `Refunded to the card${when}${reason ? `: ${reason}` : ""}.`);
}

function row(payment) {
  const receipt = `/payments/${encodeURIComponent(payment.receipt_number)}`;
  const refunded = payment.status === "refunded";
  return h("tr", { dataset: { receipt: payment.receipt_number }, class: refunded ? "is-refunded" : null },
    h("td", { "data-label": "Paid" }, h("time", { datetime: payment.paid_at || "" }, formatDateTime(payment.paid_at))),
    h("td", { "data-label": "Receipt" }, h("span", { class: "mono" }, payment.receipt_number)),
    h("td", { "data-label": "Description" }, h("div", {}, payment.description || "—",
      payment.license_id ? h("span", { class: "small muted block" }, `License ${payment.license_id}`) : "",
      refundNote(payment))),
    h("td", { "data-label": "Amount", class: "num strong" },
      refunded ? h("s", { "aria-label": `${amountOf(payment)}, refunded` }, amountOf(payment)) : amountOf(payment)),
    h("td", { "data-label": "Status" }, badge(payment.status)),
    h("td", { class: "cell-action" },
      h("a", { href: receipt, class: "button button-secondary button-small", dataset: { action: "receipt" } },
        "View receipt", h("span", { class: "visually-hidden" }, ` ${payment.receipt_number}`))));
}

async function loadPage() {
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (nextBefore) query.set("before", nextBefore);
  const page = await api(`/api/v1/payments?${query}`);
  const table = $("#payments");
  const first = !nextBefore;
  for (const payment of page.payments) table.tBodies[0].append(row(payment));
  nextBefore = page.next_before || null;
  $("#more").hidden = !nextBefore;
  if (first && !page.payments.length) {
    $("#empty").hidden = false;
    return;
  }
  table.hidden = false;
  if (!first) {
    const count = page.payments.length;
    $("#more-status").textContent = `${count} older ${count === 1 ? "payment" : "payments"} shown` +
      (nextBefore ? "." : ": that is all of them.");
  }
}

async function load() {
  hide($("#error"));
  nextBefore = null;
  $("#payments").tBodies[0].replaceChildren();
  await loadPage();
}

async function main() {
  try {
    await load();
    loaded();
  } catch (failure) {
    loaded();
    showError($("#error"), failure, {}, { retry: main });
  }
}

/** The next (older) page of receipts; the keyboard goes on where the new rows begin. A
 * failure is shown with a Retry that loads the same page again. */
async function loadMore(button) {
  const error = $("#more-error");
  error.hidden = true;
  const before = $("#payments").tBodies[0].rows.length;
  const firstNew = () => $("#payments").tBodies[0].rows[before]?.querySelector("a");
  try {
    await busy(button, "Loading…", loadPage);
    firstNew()?.focus();
  } catch (failure) {
    showError(error, failure, {}, { retry: () => loadMore(button), focus: firstNew });
  }
}

$("#more").addEventListener("click", (event) => loadMore(event.currentTarget));

main();
