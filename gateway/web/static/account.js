// Account: the user's password (the server checks the rules again), the email notifications
// they receive, and, for owners and billing users, the billing details receipts are made
// out to.
import { $, ApiError, busy, api, fieldProblems, h, hide, passwordRules, showError } from "/static/portal.js";

const main = document.querySelector("main");
const form = $("#password-form");
const error = $("#form-error");
const done = $("#form-done");
const rulesMet = passwordRules(form.new_password, $("#rules"), {
  customerId: main.dataset.customerId,
  email: main.dataset.email,
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  hide(error);
  hide(done);
  if (!form.current_password.value) {
    showError(error, "Enter your current password.");
    form.current_password.focus();
    return;
  }
  if (!rulesMet()) {
    showError(error, "The new password does not meet the rules yet.");
    form.new_password.focus();
    return;
  }
  if (form.new_password.value !== form.confirm_password.value) {
    showError(error, "The two new passwords are not the same.");
    form.confirm_password.focus();
    return;
  }
  const button = form.querySelector("button[type=submit]");
  try {
    await busy(button, "Changing…", () =>
      api("/api/v1/account/password", {
        method: "PUT",
        body: {
          current_password: form.current_password.value,
          new_password: form.new_password.value,
        },
      }));
    form.reset();
    form.new_password.dispatchEvent(new Event("input"));
    done.textContent = "Your password is changed. Your other sessions were signed out.";
    done.hidden = false;
    done.focus();
  } catch (failure) {
    showError(error, failure, {
      invalid_credentials: "The current password is not correct.",
      too_many_attempts: "Too many wrong current passwords.",
    });
    if (failure.code === "invalid_credentials") form.current_password.focus();
  }
});

// --- billing details ----------------------------------------------------------------------

const billing = $("#billing-form");
const billingError = $("#billing-error");
const billingDone = $("#billing-done");
const BILLING_LABELS = { company_name: "Company name", address: "Billing address", vat_id: "VAT ID" };

function fillBilling(details) {
  // nothing set yet: the company's own name is the likely answer
  billing.company_name.value = details.company_name || main.dataset.companyName || "";
  billing.address.value = details.address || "";
  billing.vat_id.value = details.vat_id || "";
}

async function loadBilling() {
  try {
    fillBilling(await api("/api/v1/account/billing-details"));
    billing.hidden = false;
    hide(billingError);
  } catch (failure) {
    billing.hidden = false;
    // after a Retry that worked, the keyboard goes on in the form it filled
    showError(billingError, failure, {}, { retry: loadBilling, focus: () => billing.company_name });
  } finally {
    hide($("#billing-loading"));
  }
}

billing?.addEventListener("submit", async (event) => {
  event.preventDefault();
  hide(billingError);
  hide(billingDone);
  for (const input of billing.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const body = {
    company_name: billing.company_name.value.trim(),
    address: billing.address.value.trim(),
    vat_id: billing.vat_id.value.trim() || null,
  };
  for (const name of ["company_name", "address"]) {
    if (!body[name]) {
      billing[name].setAttribute("aria-invalid", "true");
      billing[name].focus();
      showError(billingError, `Enter the ${BILLING_LABELS[name].toLowerCase()}.`);
      return;
    }
  }
  const button = billing.querySelector("button[type=submit]");
  try {
    const saved = await busy(button, "Saving…", () =>
      api("/api/v1/account/billing-details", { method: "PUT", body }));
    fillBilling(saved);
    billingDone.textContent = "Billing details saved. Your next receipts are made out to them.";
    billingDone.hidden = false;
    billingDone.focus();
  } catch (failure) {
    if (failure instanceof ApiError && failure.code === "validation_error") {
      const problems = fieldProblems(failure.details.fields);
      for (const [path] of problems) billing[path]?.setAttribute("aria-invalid", "true");
      showError(billingError, problems.map(([path, text]) => `${BILLING_LABELS[path] || path}: ${text}`).join(" "));
      return;
    }
    showError(billingError, failure);
  }
});

if (billing) loadBilling(); // only roles that may see billing details have the form

// --- email notifications ----------------------------------------------------------------

const notices = $("#notifications-form");
const noticesError = $("#notifications-error");
const noticesDone = $("#notifications-done");
const NOTICES = {
  installation_activated: ["A license is activated on a new machine", "Each time the software is activated on another machine."],
  license_expiring: ["A license expires soon", "A reminder before the end of a license."],
  receipts: ["Receipts", "After each payment, refund or payment recorded by our staff."],
  payment_failed: ["A payment failed", "When a renewal could not be charged."],
  seats_exhausted: ["All seats of a floating license are in use",
    "When a machine could not get a seat (at most once a day per license)."],
};

function fillNotices({ preferences = {}, available = [] }) {
  const list = $("#notifications-list");
  list.replaceChildren();
  for (const notice of available) {
    const [label, hint] = NOTICES[notice] || [notice.replace(/_/g, " "), ""];
    const id = `notice-${notice}`;
    list.append(h("div", { class: "check" },
      h("input", {
        type: "checkbox", id, name: notice, checked: Boolean(preferences[notice]),
        "aria-describedby": hint ? `${id}-hint` : null,
      }),
      h("label", { for: id }, label),
      hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : ""));
  }
  $("#notifications-none").hidden = available.length > 0;
  notices.querySelector("fieldset").hidden = available.length === 0;
  $("#notifications-save").hidden = available.length === 0;
}

async function loadNotices() {
  try {
    fillNotices(await api("/api/v1/account/notifications"));
    hide(noticesError);
  } catch (failure) {
    // after a Retry that worked, the focus goes to the first choice loaded (else the heading)
    showError(noticesError, failure, {}, {
      retry: loadNotices,
      focus: () => $("#notifications-list input"),
    });
  } finally {
    notices.hidden = false;
    hide($("#notifications-loading"));
  }
}

notices.addEventListener("submit", async (event) => {
  event.preventDefault();
  hide(noticesError);
  hide(noticesDone);
  const preferences = {};
  for (const input of notices.querySelectorAll("input[type=checkbox]")) {
    preferences[input.name] = input.checked;
  }
  try {
    const saved = await busy($("#notifications-save"), "Saving…", () =>
      api("/api/v1/account/notifications", { method: "PUT", body: { preferences } }));
    fillNotices(saved);
    noticesDone.textContent = "Your email notifications are saved.";
    noticesDone.hidden = false;
    noticesDone.focus();
  } catch (failure) {
    showError(noticesError, failure);
  }
});

loadNotices();
