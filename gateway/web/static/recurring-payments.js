// Recurring payments: what is charged next and when; cancel with a confirmation.
import {
  $, api, badge, busy, confirmDialog, date, h, loaded, messageFor, money, per, showError,
} from "/static/portal.js";

function productName(item) {
  return item.product?.name || item.product?.code || item.plan || "Plan";
}

function row(item) {
  const active = item.status === "active" || item.status === "past_due";
  const card = item.card_last4
    ? `${item.card_brand ? item.card_brand.charAt(0).toUpperCase() + item.card_brand.slice(1) : "Card"} •••• ${item.card_last4}`
    : "—";
  const seats = item.seats ? ` · ${item.seats} ${item.seats === 1 ? "seat" : "seats"}` : "";
  return h("tr", { dataset: { id: item.id } },
    h("td", { "data-label": "Product" }, h("div", {}, h("strong", {}, productName(item)),
      h("span", { class: "small muted block" }, `${item.plan || ""}${seats}`))),
    h("td", { "data-label": "License" },
      item.license_id ? h("a", { href: `/licenses/${encodeURIComponent(item.license_id)}`, class: "mono" }, item.license_id) : "—"),
    h("td", { "data-label": "Amount", class: "num strong" },
      `${money(item.amount, item.currency)} / ${per(item.interval)}`),
    h("td", { "data-label": "Next charge" }, active ? date(item.next_charge_at) : h("span", { class: "muted" }, "None")),
    h("td", { "data-label": "Card" }, card),
    h("td", { "data-label": "Status" }, badge(item.status)),
    h("td", { class: "cell-action" }, active
      ? h("button", {
          type: "button",
          class: "button button-danger-quiet button-small",
          onclick: (event) => cancel(item, event.currentTarget),
        }, "Cancel", h("span", { class: "visually-hidden" }, ` automatic payment for ${productName(item)}`))
      : ""));
}

async function cancel(item, button) {
  const name = productName(item);
  const ok = await confirmDialog({
    title: `Cancel automatic payments for ${name}?`,
    text: `${money(item.amount, item.currency)} per ${per(item.interval)} will no longer be charged` +
      (item.next_charge_at ? ` (next charge was ${date(item.next_charge_at)})` : "") +
      `. License ${item.license_id || ""} stays valid until it expires; you can renew it later from Buy or renew.`,
    confirm: "Cancel automatic payments",
    danger: true,
  });
  if (!ok) {
    button.focus();
    return;
  }
  const status = $("#status");
  status.className = "status-line";
  try {
    const updated = await busy(button, "Cancelling…", () =>
      api(`/api/v1/recurring-payments/${encodeURIComponent(item.id)}/cancel`, { method: "POST" }));
    const current = $("#recurring").querySelector(`tr[data-id="${CSS.escape(item.id)}"]`);
    current.replaceWith(row({ ...item, ...updated, product: updated.product?.name ? updated.product : item.product }));
    status.textContent = `Automatic payments for ${name} are cancelled.`;
    status.classList.add("status-ok");
  } catch (failure) {
    status.textContent = messageFor(failure);
    status.classList.add("status-bad");
  }
}

async function main() {
  const table = $("#recurring");
  try {
    const { recurring_payments: items } = await api("/api/v1/recurring-payments");
    loaded();
    if (!items.length) {
      $("#empty").hidden = false;
      return;
    }
    for (const item of items) table.tBodies[0].append(row(item));
    table.hidden = false;
  } catch (failure) {
    loaded();
    showError($("#error"), failure);
  }
}

main();
