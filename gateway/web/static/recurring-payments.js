// Recurring payments: the automatic renewal of each license, what is charged next and when;
// turn it off with a confirmation that says what happens, turn it back on while the paid
// period lasts, change the card it is charged to (our card fields with the sandbox, Stripe's
// card Element when the catalog names Stripe).
import {
  $, ApiError, amountOf, api, badge, busy, confirmDialog, fieldProblems, formatDate, h, hide,
  loaded, messageFor, per, showError,
} from "/static/portal.js";
import { CARD_FIELD_INPUTS, cardInputs, readCard } from "/static/card-form.js";
import { StripeCard, usesStripe } from "/static/stripe-card.js";
import { productName } from "/static/license-cells.js";

const cardDialog = $("#card-dialog");
const cardForm = $("#card-form");
const cardError = $("#card-error");
let cardFor = null; // the recurring payment whose card the dialog changes
let cardOpener = null;
let stripeCard = null; // Stripe's card Element, when Stripe takes the cards
const CARD_REFUSALS = ["card_declined", "insufficient_funds"];

const nicknames = new Map(); // license ID → its nickname (from the licenses list)

/** What the customer calls the license: its nickname, else the product's name (never the
 * plan's code, which is for machines). */
function licenseTitle(item) {
  return nicknames.get(item.license_id) || productName(item) || "License";
}

/** "Design office (LIC-…)": the title with the license ID, where both are needed. */
function fullName(item) {
  return item.license_id ? `${licenseTitle(item)} (${item.license_id})` : licenseTitle(item);
}

function cardText(item) {
  if (!item.card_last4) return "—";
  const brand = item.card_brand ? item.card_brand.charAt(0).toUpperCase() + item.card_brand.slice(1) : "Card";
  return `${brand} •••• ${item.card_last4}`;
}

/** Cancelled by the customer, and the period paid for has not ended: it can be resumed. */
function resumable(item) {
  return item.status === "cancelled" && (item.cancelled_by || "customer") === "customer" &&
    Boolean(item.next_charge_at) && new Date(item.next_charge_at).getTime() > Date.now();
}

/** The badge: "Auto-renew on", "Payment failing", "Auto-renew off", "Ended". */
// the plan in words (its code is for machines): "Yearly · 3 seats"
const PLAN_WORDS = { year: "Yearly", month: "Monthly" };

function statusBadge(item) {
  if (item.status === "active") return h("span", { class: "badge badge-ok" }, "Auto-renew on");
  if (item.status === "past_due") return h("span", { class: "badge badge-warn" }, "Payment failing");
  if (item.status === "cancelled") {
    return resumable(item)
      ? h("span", { class: "badge badge-neutral" }, "Auto-renew off")
      : h("span", { class: "badge badge-neutral" }, "Ended");
  }
  return badge(item.status);
}

function row(item) {
  const active = item.status === "active" || item.status === "past_due";
  const title = licenseTitle(item);
  const name = fullName(item);
  const actions = [];
  if (active) {
    actions.push(
      h("button", {
        type: "button",
        class: "button button-secondary button-small",
        dataset: { action: "card" },
        onclick: (event) => openCardDialog(item, event.currentTarget),
      }, "Change card", h("span", { class: "visually-hidden" }, ` for ${name}`)),
      h("button", {
        type: "button",
        class: "button button-danger-quiet button-small",
        dataset: { action: "cancel" },
        onclick: (event) => cancel(item, event.currentTarget),
      }, "Turn off automatic renewal", h("span", { class: "visually-hidden" }, ` of ${name}`)));
  } else if (resumable(item)) {
    actions.push(h("button", {
      type: "button",
      class: "button button-small",
      dataset: { action: "resume" },
      onclick: (event) => resume(item, event.currentTarget),
    }, "Turn automatic renewal back on", h("span", { class: "visually-hidden" }, ` for ${name}`)));
  }
  let next = h("span", { class: "muted" }, "None");
  if (active) next = formatDate(item.next_charge_at);
  else if (resumable(item)) {
    next = h("span", { class: "muted" }, `None: the license ends on ${formatDate(item.next_charge_at)}`);
  }
  const about = [
    title !== productName(item) ? productName(item) : "",
    PLAN_WORDS[item.interval] || "",
    item.seats ? `${item.seats} ${item.seats === 1 ? "seat" : "seats"}` : "",
  ].filter(Boolean).join(" · ");
  return h("tr", { dataset: { id: item.id } },
    h("td", { "data-label": "License" }, h("div", {},
      h("strong", { class: "block" }, title),
      item.license_id
        ? h("a", { href: `/licenses/${encodeURIComponent(item.license_id)}`, class: "mono small" }, item.license_id)
        : "",
      about ? h("span", { class: "small muted block" }, about) : "")),
    h("td", { "data-label": "Amount", class: "num strong" }, `${amountOf(item)} / ${per(item.interval)}`),
    h("td", { "data-label": "Next charge" }, next),
    h("td", { "data-label": "Card", class: "card-cell" }, cardText(item)),
    h("td", { "data-label": "Automatic renewal" }, statusBadge(item),
      item.status === "past_due"
        ? h("span", { class: "small muted block" }, "The last charge failed: change the card to pay.")
        : item.status === "cancelled" && item.cancelled_by === "refund"
          ? h("span", { class: "small muted block" }, "Ended: its payment was refunded.")
          : ""),
    h("td", { class: "cell-action" }, actions.length ? h("div", { class: "row-actions" }, ...actions) : ""));
}

/** Puts the updated recurring payment in its row (keeping the product name the list had). */
function replaceRow(item, updated) {
  const merged = { ...item, ...updated, product: updated.product?.name ? updated.product : item.product };
  const current = $("#recurring").querySelector(`tr[data-id="${CSS.escape(item.id)}"]`);
  const fresh = row(merged);
  current.replaceWith(fresh);
  return fresh;
}

function say(text, ok) {
  const status = $("#status");
  status.className = `status-line ${ok ? "status-ok" : "status-bad"}`;
  status.textContent = text;
}

async function cancel(item, button) {
  const name = fullName(item);
  const until = item.next_charge_at ? formatDate(item.next_charge_at) : "";
  const ok = await confirmDialog({
    title: `Turn off automatic renewal of ${name}?`,
    text: (until
      ? `The license stays valid until its paid period ends on ${until}, then it expires. `
      : "The license stays valid until its paid period ends, then it expires. ") +
      `No more charges: ${amountOf(item)} per ${per(item.interval)} will not be charged again. ` +
      (until ? `You can turn automatic renewal back on until ${until}, ` : "You can turn it back on ") +
      "or renew the license later from Buy or renew.",
    confirm: "Turn off automatic renewal",
    cancel: "Keep it on",
    danger: true,
  });
  if (!ok) {
    button.focus();
    return;
  }
  try {
    const updated = await busy(button, "Turning off…", () =>
      api(`/api/v1/recurring-payments/${encodeURIComponent(item.id)}/cancel`, { method: "POST" }));
    replaceRow(item, updated).querySelector("button")?.focus();
    say(`Automatic renewal of ${name} is off: nothing more is charged` +
      (until ? `, and the license ends on ${until}.` : "."), true);
  } catch (failure) {
    say(messageFor(failure), false);
  }
}

async function resume(item, button) {
  const name = fullName(item);
  try {
    const updated = await busy(button, "Turning on…", () =>
      api(`/api/v1/recurring-payments/${encodeURIComponent(item.id)}/resume`, { method: "POST" }));
    replaceRow(item, updated).querySelector("button")?.focus();
    say(`Automatic renewal of ${name} is back on: next charge ${amountOf(updated)} on ` +
      `${formatDate(updated.next_charge_at)}.`, true);
  } catch (failure) {
    say(messageFor(failure, {
      recurring_payment_ended: "The paid period has ended, so automatic renewal cannot be " +
        "turned back on. Renew the license from Buy or renew.",
    }), false);
    if (failure instanceof ApiError && failure.code === "recurring_payment_ended") {
      replaceRow(item, { status: "cancelled", next_charge_at: null });
    }
  }
}

function openCardDialog(item, opener) {
  cardFor = item;
  cardOpener = opener;
  cardForm.reset();
  hide(cardError);
  for (const input of cardForm.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  $("#card-title").textContent = `Change the card for ${fullName(item)}`;
  $("#card-text").textContent = `Now charged to ${cardText(item)}: ${amountOf(item)} per ${per(item.interval)}` +
    (item.next_charge_at ? `, next on ${formatDate(item.next_charge_at)}.` : ".");
  stripeCard?.clear();
  cardDialog.showModal();
  if (stripeCard) stripeCard.focus();
  else cardForm.number.focus();
}

function closeCardDialog() {
  cardDialog.close();
  cardOpener?.focus();
}

async function saveCard(event) {
  event.preventDefault();
  hide(cardError);
  for (const input of cardForm.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const [body, problem] = await newCard();
  if (problem) {
    showError(cardError, problem);
    return;
  }
  const item = cardFor;
  try {
    const updated = await busy($("#card-save"), "Checking the card…", () =>
      api(`/api/v1/recurring-payments/${encodeURIComponent(item.id)}/card`, {
        method: "PUT",
        body,
      }));
    cardDialog.close();
    const fresh = replaceRow(item, updated);
    fresh.querySelector("button[data-action=card]")?.focus();
    say(`${fullName(item)} is now charged to ${cardText(updated)}.`, true);
  } catch (failure) {
    // a bank that wants this card confirmed (3-D Secure) cannot do it here: billing says
    // where it can
    const confirmElsewhere = failure instanceof ApiError && failure.code === "card_declined" &&
      failure.details.decline_code === "authentication_required" && failure.message;
    showError(cardError, failure, {
      card_declined: confirmElsewhere ||
        "The bank declined this card. Nothing changed: the old card stays in use. Try another card.",
      insufficient_funds: "The bank declined this card. Nothing changed: the old card stays in use. Try another card.",
    });
    if (failure instanceof ApiError && failure.code === "validation_error") {
      for (const [path] of fieldProblems(failure.details.fields)) {
        const name = CARD_FIELD_INPUTS[path];
        if (name) cardForm[name].setAttribute("aria-invalid", "true");
      }
    }
    if (failure instanceof ApiError && CARD_REFUSALS.includes(failure.code)) {
      if (stripeCard) {
        stripeCard.focus();
      } else {
        cardForm.number.setAttribute("aria-invalid", "true");
        cardForm.number.focus();
      }
    }
  }
}

/** The body of a card change: `{card}` from our fields, or `{payment_method}` from
 * Stripe's Element; [null, problem] when the card is not complete (the field focused). */
async function newCard() {
  if (stripeCard) {
    const [method, problem] = await busy($("#card-save"), "Checking the card…", () =>
      stripeCard.paymentMethod());
    if (problem) {
      stripeCard.focus();
      return [null, problem];
    }
    return [{ payment_method: method }, null];
  }
  const [card, problem, input] = readCard(cardForm);
  if (problem) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return [null, problem];
  }
  return [{ card }, null];
}

/** Stripe's card Element in the dialog when the catalog names Stripe, else our fields;
 * false when Stripe's form could not be loaded. */
async function cardFields(payment) {
  if (!usesStripe(payment)) {
    cardInputs(cardForm);
    return true;
  }
  $("#card-fields").hidden = true;
  $("#stripe-card-field").hidden = false;
  try {
    stripeCard = await StripeCard.mount(payment, $("#stripe-card"));
    return true;
  } catch (failure) {
    return false;
  }
}

let wired = false;

async function load() {
  const table = $("#recurring");
  hide($("#error"));
  const [{ recurring_payments: items }, catalog, owned] = await Promise.all([
    api("/api/v1/recurring-payments"),
    // how cards are taken; without an answer, our fields (billing then says if it wants
    // Stripe's instead)
    api("/api/v1/catalog").catch((failure) => {
      if (failure.code === "unauthenticated") throw failure;
      return null;
    }),
    // the licenses' nicknames for the titles; without them, the product names
    api("/api/v1/licenses").catch((failure) => {
      if (failure.code === "unauthenticated") throw failure;
      return null;
    }),
  ]);
  for (const license of owned?.licenses || []) {
    if (license.nickname) nicknames.set(license.license_id, license.nickname);
  }
  const cardsOk = wired ? true : await cardFields(catalog?.payment);
  wired = true;
  loaded();
  table.tBodies[0].replaceChildren();
  if (!items.length) {
    $("#empty").hidden = false;
    return;
  }
  for (const item of items) table.tBodies[0].append(row(item));
  table.hidden = false;
  if (!cardsOk) {
    for (const button of table.querySelectorAll("button[data-action=card]")) button.disabled = true;
    say("Changing the card is not available right now: the card form could not be loaded. " +
      "Reload the page to try again.", false);
  }
}

async function main() {
  try {
    await load();
  } catch (failure) {
    loaded();
    showError($("#error"), failure, {}, { retry: main });
  }
}

cardForm.addEventListener("submit", saveCard);
$("#card-cancel").addEventListener("click", closeCardDialog);
main();
