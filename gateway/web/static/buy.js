// Buy or renew: first a new license or the renewal of one the company has (which decides the
// product and the seats), then a plan of that product, the seats, a card (our card fields
// with the sandbox; Stripe's card Element when the catalog names Stripe, with the bank's
// confirmation, 3-D Secure, when it asks for one). The summary says what is paid now, until
// when the license runs and when it is charged next.
import {
  $, ApiError, LICENSE_ADMINS, amountOf, api, busy, fieldProblems, formatDate, formatMoney, h,
  hide, loaded, may, newRequestKey, per, showError,
} from "/static/portal.js";
import { CARD_FIELD_INPUTS, cardInputs, readCard } from "/static/card-form.js";
import { licenseName } from "/static/license-cells.js";
import { StripeCard, usesStripe } from "/static/stripe-card.js";

const form = $("#buy-form");
const error = $("#form-error");
let plans = [];
let licenses = [];
let stripeCard = null; // Stripe's card Element, when Stripe takes the cards

// One Idempotency-Key per purchase attempt. Paying again with the same plan, seats, license
// and card after an answer that never came (a timeout, a lost connection, a 5xx) is the same
// attempt: it keeps its key, so the card is charged at most once. Any change, or a definite
// answer (declined, refused), makes the next payment a new attempt with a new key.
let attempt = null;

function attemptKey(body) {
  const text = JSON.stringify(body);
  if (!attempt || attempt.body !== text) attempt = { key: newRequestKey(), body: text };
  return attempt.key;
}

function outcomeUnknown(failure) {
  return !(failure instanceof ApiError) || failure.status === 0 || failure.status === 408 ||
    failure.status >= 500;
}

function selectedPlan() {
  const checked = form.querySelector("input[name=plan]:checked");
  const plan = plans.find((item) => item.code === checked?.value) || null;
  return plan && offered(plan) ? plan : null;
}

function renewing() {
  return form.kind.value === "renew";
}

/** The license chosen for renewal (null for a new license). */
function selectedLicense() {
  if (!renewing()) return null;
  return licenses.find((item) => item.license_id === form.license_id.value) || null;
}

// a renewal keeps the license's model: billing refuses a plan of the other one
const modelOf = (item) => item?.model || "node_locked";

/** Whether `plan` may be bought now: any plan for a new license; for a renewal only the plans
 * of the license's product and model (never a purchase of another product). */
function offered(plan, license = selectedLicense()) {
  if (!license) return !renewing();
  return plan.product.code === license.product?.code && modelOf(plan) === modelOf(license);
}

/** "Design office · LIC-…" or "CAD Pro · LIC-…": what the customer calls the license, and its ID. */
function licenseWithId(license) {
  return `${licenseName(license)} · ${license.license_id}`;
}

function seatWords(count) {
  return `${count} ${count === 1 ? "seat" : "seats"}`;
}

// a perpetual license never expires: it needs no renewal (billing refuses it)
const renewable = (license) => Boolean(license.expires_at);

function renderLicenseChoices() {
  const current = form.license_id.value;
  const options = [];
  for (const license of licenses.filter(renewable)) {
    // a suspended license cannot be renewed (billing refuses it): shown, not chosen
    const suspended = license.status === "suspended";
    const product = license.nickname && license.product?.name ? `${license.product.name}, ` : "";
    options.push(h("option", { value: license.license_id, disabled: suspended },
      `${licenseWithId(license)} (${product}${seatWords(license.seats)}, ` +
        `${license.status === "expired" ? "expired" : "until"} ${formatDate(license.expires_at)})` +
        (suspended ? " — suspended, contact support" : "")));
  }
  form.license_id.replaceChildren(...options);
  const choosable = [...form.license_id.options].filter((option) => !option.disabled);
  if (choosable.some((option) => option.value === current)) form.license_id.value = current;
  else if (choosable.length) form.license_id.value = choosable[0].value;
  const none = !choosable.length;
  form.querySelector("#kind-renew").disabled = none;
  $("#kind-renew-hint").textContent = none
    ? "You have no license to renew yet."
    : "More time for it: it keeps its ID, seats and machines.";
}

/** Shows the plans the choice allows; says so when none of the license's product is on sale. */
function renderPlanChoices() {
  const license = selectedLicense();
  let first = null;
  for (const plan of plans) {
    const input = form.querySelector(`#plan-${CSS.escape(plan.code)}`);
    const shown = offered(plan, license);
    input.closest(".plan").hidden = !shown;
    input.disabled = !shown;
    if (shown && !first) first = input;
  }
  const checked = form.querySelector("input[name=plan]:checked:not(:disabled)");
  if (!checked && first) first.checked = true;
  const message = $("#no-plan");
  if (renewing() && license && !first) {
    const product = license.product?.name || "this product";
    message.textContent = `No plan of ${product} is on sale right now, so license ` +
      `${license.license_id} cannot be renewed here. Please contact sales.`;
    message.hidden = false;
  } else if (renewing() && !license) {
    message.textContent = "Choose the license to renew.";
    message.hidden = false;
  } else {
    message.hidden = true;
  }
}

function seats() {
  const value = Number.parseInt(form.seats.value, 10);
  return Number.isFinite(value) ? value : 0;
}

/** `start` plus one month or year, clamped to the month's end (Jan 31 → Feb 28), in UTC: the
 * rule billing's `add_interval` applies. */
function addInterval(start, interval) {
  const months = interval === "year" ? 12 : interval === "month" ? 1 : 0;
  if (!months) return null;
  const index = start.getUTCMonth() + months;
  const year = start.getUTCFullYear() + Math.floor(index / 12);
  const month = index % 12;
  const last = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const end = new Date(start.getTime());
  end.setUTCFullYear(year, month, Math.min(start.getUTCDate(), last));
  return end;
}

/** Until when the license runs once paid: a new purchase from now, a renewal from where the
 * license ends (if that is later), as billing's `purchase_period` counts. */
function paidUntil(plan, license) {
  const now = new Date();
  const expiry = license?.expires_at ? new Date(license.expires_at) : null;
  const start = expiry && expiry > now ? expiry : now;
  return addInterval(start, plan.interval);
}

// the summary's sentence is a live region: shown at once, but said only when it really
// changes, and while the seats are typed only once the typing pauses (not at each keystroke)
const SUM_LINE_PAUSE_MS = 600;
let sumLineTimer = 0;
let sumLineSaid = "";

function sayLine(text, typing) {
  const line = $("#sum-line");
  window.clearTimeout(sumLineTimer);
  const speak = () => {
    if (text === sumLineSaid) {
      // back to what was said last: shown again quietly
      if (line.textContent !== text) line.textContent = text;
      line.setAttribute("aria-live", "polite");
      return;
    }
    line.setAttribute("aria-live", "polite");
    line.replaceChildren(text); // a new text node: said now
    sumLineSaid = text;
  };
  if (!typing) {
    speak();
    return;
  }
  line.setAttribute("aria-live", "off"); // no layout jump, no stale total: shown, not said
  if (line.textContent !== text) line.textContent = text;
  sumLineTimer = window.setTimeout(speak, SUM_LINE_PAUSE_MS);
}

/** The summary of the choice; `typing` while the seats are being typed. */
function summarize({ typing = false } = {}) {
  const plan = selectedPlan();
  const license = selectedLicense();
  $("#license-field").hidden = !renewing();
  form.seats.readOnly = renewing();
  if (license) form.seats.value = license.seats;
  $("#seats-hint").textContent = renewing()
    ? license
      ? `A renewal keeps the license's ${seatWords(license.seats)}.`
      : "A renewal keeps the license's seats."
    : "How many machines may use the software at the same time.";
  $("#sum-for").textContent = license ? `Renewal of ${licenseWithId(license)}` : renewing() ? "—" : "A new license";
  $("#sum-plan").textContent = plan ? `${plan.product.name} · ${plan.label}` : "Choose a plan";
  $("#sum-seats").textContent = seats() > 0 ? String(seats()) : "—";
  const total = plan && seats() > 0 ? formatMoney(plan.amount * seats(), plan.currency) : null;
  const until = plan ? paidUntil(plan, license) : null;
  const untilText = until ? formatDate(until.toISOString()) : "—";
  $("#sum-until").textContent = untilText;
  $("#sum-next").textContent = until ? `${untilText} (${total || "—"} every ${per(plan.interval)})` : "—";
  $("#sum-total").textContent = total || "—";
  sayLine(total && until
    ? `You pay ${total} now; the license runs until ${untilText}; next automatic charge ${untilText}.`
    : "", typing);
  $("#pay").textContent = total ? `Pay ${total}` : "Pay";
  $("#pay").disabled = !plan;
}

function planLabel(plan) {
  const names = { month: "Monthly", year: "Yearly" };
  const label = names[plan.interval] || plan.code;
  // floating seats are shared by whichever machines run the program at the time
  return modelOf(plan) === "floating" ? `${label}, floating seats` : label;
}

function renderPlans(products) {
  const container = $("#plans");
  plans = [];
  container.replaceChildren();
  for (const product of products) {
    for (const plan of product.plans) {
      const entry = { ...plan, product, label: planLabel(plan) };
      plans.push(entry);
      const id = `plan-${plan.code}`;
      container.append(h("label", { class: "plan", for: id },
        h("input", { type: "radio", name: "plan", id, value: plan.code, required: true }),
        h("span", { class: "plan-body" },
          h("span", { class: "plan-name" }, `${product.name} · ${entry.label}`),
          h("span", { class: "plan-price" }, formatMoney(plan.amount, plan.currency),
            h("span", { class: "muted" }, ` per seat / ${per(plan.interval)}`)))));
    }
  }
}

/** The whole choice again (new or renew, license, plans, summary). */
function refresh() {
  renderPlanChoices();
  summarize();
}

const FIELD_INPUTS = { ...CARD_FIELD_INPUTS, seats: "seats", plan: null, payment_method: null };
const CARD_REFUSALS = ["card_declined", "insufficient_funds", "authentication_failed"];

/** The card part of the body: `{card}` from our fields, or `{payment_method}` from Stripe's
 * Element; [null, problem] when the card is not complete (the problem shown, the field
 * focused). */
async function cardMeans(button) {
  if (stripeCard) {
    const [method, problem] = await busy(button, "Checking the card…", () => stripeCard.paymentMethod());
    if (problem) {
      stripeCard.focus();
      return [null, problem];
    }
    return [{ payment_method: method }, null];
  }
  const [cardData, problem, input] = readCard(form);
  if (problem) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return [null, problem];
  }
  return [{ card: cardData }, null];
}

/** The purchase, confirmed with the bank first when it asks (202 `requires_action`):
 * Stripe's confirmation window, then the portal's confirmation route, whose answer is a
 * purchase's (or a 402 `authentication_failed`). */
async function pay(button, body, headers) {
  let result = await busy(button, "Processing payment…", () =>
    api("/api/v1/purchases", { method: "POST", body, headers }));
  if (result?.status === "requires_action" && stripeCard) {
    const { purchase_id: purchaseId, client_secret: secret } = result;
    result = await busy(button, "Waiting for your bank…", async () => {
      await stripeCard.confirm(secret);
      return api(`/api/v1/purchases/${encodeURIComponent(purchaseId)}/confirm`, { method: "POST" });
    });
  }
  return result;
}

function done(result) {
  const { payment, license, license_status: status, recurring_payment: recurring } = result;
  const panel = $("#done");
  const receipt = `/payments/${encodeURIComponent(payment.receipt_number)}`;
  const licenseLine = license
    ? h("p", {}, status === "extended" ? "License " : "Your new license ",
        h("a", { href: `/licenses/${encodeURIComponent(license.license_id)}`, class: "mono" }, license.license_id),
        status === "extended" ? " is extended."
          // a billing user never sees activation passwords: an owner or license admin does
          : may(LICENSE_ADMINS) ? " is ready. Open it to see its activation password."
            : " is ready. An owner or a license admin of your account can see its activation password.")
    : h("p", {}, "Your license is being prepared; it appears under Licenses in a moment.");
  panel.replaceChildren(
    h("h2", {}, "Thank you, your payment went through"),
    h("p", {}, `${amountOf(payment)} paid. Receipt `,
      h("span", { class: "mono" }, payment.receipt_number), "."),
    licenseLine,
    recurring?.next_charge_at && recurring.status !== "cancelled"
      ? h("p", { id: "done-next-charge" },
          `Renews automatically: next charge ${amountOf(recurring)} on ${formatDate(recurring.next_charge_at)}.`)
      : "",
    h("p", { class: "actions" },
      h("a", { class: "button", href: license ? `/licenses/${encodeURIComponent(license.license_id)}` : "/licenses" },
        license ? "Open the license" : "Go to licenses"),
      h("a", { class: "button button-secondary", href: receipt }, "View receipt")));
  form.hidden = true;
  panel.hidden = false;
  panel.focus();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  hide(error);
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const plan = selectedPlan();
  if (renewing() && !selectedLicense()) return showError(error, "Choose the license to renew.");
  if (!plan) return showError(error, "Choose a plan.");
  if (!(seats() >= 1 && seats() <= 10000)) {
    form.seats.focus();
    return showError(error, "Enter a number of seats between 1 and 10,000.");
  }
  const button = $("#pay");
  const [means, problem] = await cardMeans(button);
  if (problem) return showError(error, problem);
  const body = { plan: plan.code, seats: seats(), ...means };
  const license = selectedLicense();
  if (license) body.license_id = license.license_id;
  const headers = { "Idempotency-Key": attemptKey(body) };
  try {
    const result = await pay(button, body, headers);
    if (result?.status === "requires_action") {
      // the bank still waits: paying again is the same attempt, and confirms it
      showError(error, "Your bank has not confirmed the payment yet, and nothing was charged. " +
        "Press Pay to confirm it with your bank.");
      return;
    }
    attempt = null;
    done(result);
  } catch (failure) {
    const unknown = outcomeUnknown(failure);
    if (!unknown) attempt = null;
    const retry = "The answer to this payment did not arrive. Press Pay again without changing " +
      "anything: the same payment is looked up, and your card is never charged twice.";
    showError(error, failure, {
      license_suspended: "This license is suspended, so it cannot be renewed. Please contact support.",
      ...(unknown ? { network_error: retry, service_unavailable: retry, internal_error: retry } : {}),
    });
    if (failure instanceof ApiError && failure.code === "validation_error") {
      for (const [path] of fieldProblems(failure.details.fields)) {
        const name = FIELD_INPUTS[path];
        if (name) form[name].setAttribute("aria-invalid", "true");
      }
    }
    if (failure instanceof ApiError && CARD_REFUSALS.includes(failure.code)) {
      if (stripeCard) {
        stripeCard.focus();
      } else {
        form.number.setAttribute("aria-invalid", "true");
        form.number.focus();
      }
    }
    summarize();
  }
});

/** The license a "Renew" link names (`?license_id=` or `?license=`), upper case. */
function wantedLicense() {
  const query = new URLSearchParams(window.location.search);
  const wanted = query.get("license_id") || query.get("license");
  return wanted ? wanted.trim().toUpperCase() : "";
}

/** Renewal of the license the link names: chosen, with only plans of its product offered. */
function preselect(wanted) {
  const license = licenses.find((item) => item.license_id === wanted);
  const problem = $("#license-error");
  if (!license) {
    // without the list (licensing down) the Retry of the list's message loads it again
    if (!licensesFailure) {
      showError(problem, `License ${wanted} is not in your account, so it cannot be renewed ` +
        "here. Choose another license, or buy a new one.");
    }
    return;
  }
  if (!renewable(license)) {
    showError(problem, `License ${license.license_id} never expires: it needs no renewal.`);
    return;
  }
  if (license.status === "suspended") {
    showError(problem, `License ${license.license_id} is suspended, so it cannot be renewed. ` +
      "Please contact support.");
    return;
  }
  form.kind.value = "renew";
  form.license_id.value = license.license_id;
}

let licensesFailure = null; // why the company's licenses could not be loaded
let wired = false;

async function load() {
  hide($("#error"));
  const [catalog, owned] = await Promise.all([
    api("/api/v1/catalog"),
    api("/api/v1/licenses").catch((failure) => {
      if (failure.code === "unauthenticated") throw failure;
      return failure; // renewals need the list; new purchases do not
    }),
  ]);
  loaded();
  if (!catalog.products.length) {
    showError($("#error"), "No plans are on sale right now. Please contact sales.");
    return;
  }
  licensesFailure = owned instanceof Error ? owned : null;
  licenses = licensesFailure ? [] : owned.licenses || [];
  renderPlans(catalog.products);
  renderLicenseChoices();
  hide($("#license-error"));
  if (licensesFailure) {
    const words = "Your licenses could not be loaded, so none can be renewed right now; a new " +
      "license can still be bought.";
    showError($("#license-error"), licensesFailure,
      { service_unavailable: words, network_error: words, internal_error: words }, { retry: main });
  }
  const wanted = wantedLicense();
  if (wanted) preselect(wanted);
  if (!wired) {
    wired = true;
    form.addEventListener("change", (event) => {
      if (event.target.name === "kind" || event.target.name === "license_id") {
        hide(error);
        renderPlanChoices();
      }
      summarize();
    });
    form.seats.addEventListener("input", () => summarize({ typing: true }));
  }
  if (usesStripe(catalog.payment)) {
    $("#card-fields").hidden = true;
    $("#stripe-card-field").hidden = false;
    form.hidden = false; // Stripe mounts its fields into a shown form
    try {
      stripeCard ||= await StripeCard.mount(catalog.payment, $("#stripe-card"));
    } catch (failure) {
      form.hidden = true;
      showError($("#error"), "The card form could not be loaded. Reload the page; if it " +
        "keeps happening, contact support.");
      return;
    }
  } else if (!cardsReady) {
    cardsReady = true;
    cardInputs(form);
  }
  refresh();
  form.hidden = false;
}

let cardsReady = false;

async function main() {
  try {
    await load();
  } catch (failure) {
    loaded();
    showError($("#error"), failure, {}, { retry: main });
  }
}

main();
