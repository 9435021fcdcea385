// Payment history: the receipts of portal purchases; each opens as a printable page.
import { $, api, badge, date, h, loaded, money, showError } from "/static/portal.js";

async function main() {
  const table = $("#payments");
  try {
    const { payments } = await api("/api/v1/payments");
    loaded();
    if (!payments.length) {
      $("#empty").hidden = false;
      return;
    }
    for (const payment of payments) {
      const receipt = `/api/v1/payments/${encodeURIComponent(payment.receipt_number)}/receipt`;
      table.tBodies[0].append(h("tr", {},
        h("td", { "data-label": "Date" }, date(payment.paid_at)),
        h("td", { "data-label": "Receipt" }, h("span", { class: "mono" }, payment.receipt_number)),
        h("td", { "data-label": "Description" }, h("div", {}, payment.description || "—",
          payment.license_id ? h("span", { class: "small muted block" }, `License ${payment.license_id}`) : "")),
        h("td", { "data-label": "Amount", class: "num strong" }, money(payment.amount, payment.currency)),
        h("td", { "data-label": "Status" }, badge(payment.status)),
        h("td", { class: "cell-action" },
          h("a", { href: receipt, target: "_blank", rel: "noopener", class: "button button-secondary button-small" },
            "View receipt", h("span", { class: "visually-hidden" }, ` ${payment.receipt_number} (opens in a new tab)`)))));
    }
    table.hidden = false;
  } catch (failure) {
    loaded();
    showError($("#error"), failure);
  }
}

main();
