// Buy or renew: a plan from the catalog, seats, an optional license to renew, a card (our
// card fields with the sandbox; Stripe's card Element when the catalog names Stripe, with
// the bank's confirmation, 3-D Secure, when it asks for one).
import {
  $, ApiError, LICENSE_ADMINS, amountOf, api, busy, date, fieldProblems, h, hide, loaded, may,
  messageFor, money, newRequestKey, per, showError,
} from "/static/portal.js";
import { CARD_FIELD_INPUTS, cardInputs, readCard } from "/static/card-form.js";
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
  return plans.find((plan) => plan.code === checked?.value) || null;
}

function selectedLicense() {
  return licenses.find((item) => item.license_id === form.license_id.value) || null;
}

// a renewal keeps the license's model: billing refuses a plan of the other one
const modelOf = (item) => item?.model || "node_locked";

function renderLicenseChoices() {
  const plan = selectedPlan();
  const current = form.license_id.value;
  const options = [h("option", { value: "" }, "A new license")];
  for (const license of licenses) {
    if (plan && license.product?.code !== plan.product.code) continue;
    if (plan && modelOf(license) !== modelOf(plan)) continue;
    // a perpetual license never expires: it needs no renewal (billing refuses it)
    if (!license.expires_at) continue;
    const until = license.expires_at ? `, until ${new Date(license.expires_at).toISOString().slice(0, 10)}` : "";
    // a suspended license cannot be renewed (billing refuses it): shown, not chosen
    const suspended = license.status === "suspended";
    options.push(h("option", { value: license.license_id, disabled: suspended },
      `Renew ${license.license_id} (${license.seats} ${license.seats === 1 ? "seat" : "seats"}${until})` +
        (suspended ? " — suspended, contact support" : "")));
  }
  form.license_id.replaceChildren(...options);
  if ([...form.license_id.options].some((option) => option.value === current && !option.disabled)) {
    form.license_id.value = current;
  }
}

function seats() {
  const value = Number.parseInt(form.seats.value, 10);
  return Number.isFinite(value) ? value : 0;
}

function summarize() {
  const plan = selectedPlan();
  const license = selectedLicense();
  form.seats.readOnly = Boolean(license);
  if (license) form.seats.value = license.seats;
  $("#seats-hint").textContent = license
    ? "A renewal keeps the license's seats."
    : "How many machines may use the software at the same time.";
  $("#sum-plan").textContent = plan ? `${plan.product.name} · ${plan.label}` : "Choose a plan";
  $("#sum-seats").textContent = seats() > 0 ? String(seats()) : "—";
  $("#sum-interval").textContent = plan ? `Every ${per(plan.interval)}` : "—";
  $("#sum-total").textContent = plan && seats() > 0 ? money(plan.amount * seats(), plan.currency) : "—";
  $("#pay").textContent = plan && seats() > 0 ? `Pay ${money(plan.amount * seats(), plan.currency)}` : "Pay";
}

function planLabel(plan) {
  const names = { month: "Monthly", year: "Yearly" };
  const label = names[plan.interval] || plan.code;
  // floating seats are shared by whichever machines run the program at the time
  return modelOf(plan) === "floating" ? `${label}, floating seats` : label;
}

function renderPlans(products) {
  const container = $("#plans");
  for (const product of products) {
    for (const plan of product.plans) {
      const entry = { ...plan, product, label: planLabel(plan) };
      plans.push(entry);
      const id = `plan-${plan.code}`;
      container.append(h("label", { class: "plan", for: id },
        h("input", { type: "radio", name: "plan", id, value: plan.code, required: true }),
        h("span", { class: "plan-body" },
          h("span", { class: "plan-name" }, `${product.name} · ${entry.label}`),
          h("span", { class: "plan-price" }, plan.price || money(plan.amount, plan.currency),
            h("span", { class: "muted" }, ` per seat / ${per(plan.interval)}`)))));
    }
  }
  const first = container.querySelector("input[name=plan]");
  if (first) first.checked = true;
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
  const receipt = `/api/v1/payments/${encodeURIComponent(payment.receipt_number)}/receipt`;
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
          `Renews automatically: next charge ${amountOf(recurring)} on ${date(recurring.next_charge_at)}.`)
      : "",
    h("p", { class: "actions" },
      h("a", { class: "button", href: license ? `/licenses/${encodeURIComponent(license.license_id)}` : "/licenses" },
        license ? "Open the license" : "Go to licenses"),
      h("a", { class: "button button-secondary", href: receipt, target: "_blank", rel: "noopener" }, "View receipt")));
  form.hidden = true;
  panel.hidden = false;
  panel.focus();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  hide(error);
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const plan = selectedPlan();
  if (!plan) return showError(error, "Choose a plan.");
  if (!(seats() >= 1 && seats() <= 10000)) {
    form.seats.focus();
    return showError(error, "Enter a number of seats between 1 and 10,000.");
  }
  const button = $("#pay");
  const [means, problem] = await cardMeans(button);
  if (problem) return showError(error, problem);
  const body = { plan: plan.code, seats: seats(), ...means };
  if (form.license_id.value) body.license_id = form.license_id.value;
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

async function main() {
  try {
    const [catalog, owned] = await Promise.all([
      api("/api/v1/catalog"),
      api("/api/v1/licenses").catch((failure) => {
        if (failure.code === "unauthenticated") throw failure;
        return { licenses: [] }; // renewals need the list; new purchases do not
      }),
    ]);
    loaded();
    if (!catalog.products.length) {
      showError($("#error"), "No plans are on sale right now. Please contact sales.");
      return;
    }
    licenses = owned.licenses || [];
    renderPlans(catalog.products);
    const wanted = new URLSearchParams(window.location.search).get("license");
    renderLicenseChoices();
    if (wanted) {
      // license IDs are upper case, however the link spelt it
      const license = licenses.find((item) => item.license_id === wanted.trim().toUpperCase());
      const plan = license && plans.find(
        (item) => item.product.code === license.product?.code && modelOf(item) === modelOf(license));
      if (license?.status === "suspended") {
        showError(error, "This license is suspended, so it cannot be renewed. Please contact support.");
      } else if (license && !plan && modelOf(license) === "floating") {
        showError(error, "No plan on sale renews a floating license of this product. Please contact sales.");
      } else if (plan) {
        form.querySelector(`#plan-${CSS.escape(plan.code)}`).checked = true;
        renderLicenseChoices();
        form.license_id.value = license.license_id;
      }
    }
    form.addEventListener("change", (event) => {
      if (event.target.name === "plan") renderLicenseChoices();
      summarize();
    });
    form.seats.addEventListener("input", summarize);
    if (usesStripe(catalog.payment)) {
      $("#card-fields").hidden = true;
      $("#stripe-card-field").hidden = false;
      form.hidden = false; // Stripe mounts its fields into a shown form
      try {
        stripeCard = await StripeCard.mount(catalog.payment, $("#stripe-card"));
      } catch (failure) {
        form.hidden = true;
        showError($("#error"), "The card form could not be loaded. Reload the page; if it " +
          "keeps happening, contact support.");
        return;
      }
    } else {
      cardInputs(form);
    }
    summarize();
    form.hidden = false;
  } catch (failure) {
    loaded();
    showError($("#error"), messageFor(failure));
  }
}

main();
