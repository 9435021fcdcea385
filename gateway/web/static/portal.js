// The portal's small script layer: JSON API calls (cookie session + CSRF header), error
// messages a customer understands, formatting, and a few DOM helpers. No dependencies.

// over HTTPS the gateway names its cookies with the `__Host-` prefix (see gateway/sessions.py)
const CSRF_COOKIES = ["__Host-portal_csrf", "portal_csrf"];
const LOCALE = document.documentElement.lang || "en";

export class ApiError extends Error {
  constructor(status, code, message, details, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
    this.retryAfter = retryAfter;
  }
}

function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

function csrfToken() {
  for (const name of CSRF_COOKIES) {
    const value = cookie(name);
    if (value) return value;
  }
  return "";
}

/**
 * The address to come back to after logging in, or "" when `value` is not a path on this
 * site. The same rule as the gateway's `local_path`: "/" then visible ASCII only, never "//"
 * or "/\\" (browsers drop tabs and line breaks from a URL and read "\\" as "/", so
 * "/\t/evil.example" would be "//evil.example"); then the browser's own URL parser must agree
 * that it stays on this origin.
 */
export function safeNext(value) {
  if (typeof value !== "string" || !/^\/(?![/\\])[\x21-\x5b\x5d-\x7e]*$/.test(value)) return "";
  let url;
  try {
    url = new URL(value, window.location.origin);
  } catch (cause) {
    return "";
  }
  return url.origin === window.location.origin ? url.href : "";
}

export function goToLogin() {
  const here = window.location.pathname + window.location.search;
  window.location.assign("/login?next=" + encodeURIComponent(here));
}

/**
 * A new request key for an `Idempotency-Key` header: 32 random hex digits. (Not
 * crypto.randomUUID, which plain HTTP on another host than localhost does not have.)
 */
export function newRequestKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * Calls the JSON API; resolves to the parsed body (null for 204), rejects with ApiError.
 * A lost session sends the browser to the login page unless `options.stayOn401` is set;
 * `options.headers` adds headers (e.g. an `Idempotency-Key`).
 */
export async function api(path, options = {}) {
  const method = options.method || "GET";
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken();
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (cause) {
    throw new ApiError(0, "network_error", "The portal cannot be reached.", {}, null);
  }
  if (response.status === 204) return null;
  let payload = null;
  try {
    payload = await response.json();
  } catch (cause) {
    payload = null;
  }
  if (response.ok) return payload;
  const error = (payload && payload.error) || {};
  const retryAfter = Number(response.headers.get("Retry-After")) || error.details?.retry_after || null;
  const failure = new ApiError(
    response.status,
    error.code || "http_" + response.status,
    error.message || "",
    error.details,
    retryAfter,
  );
  if (failure.code === "unauthenticated" && !options.stayOn401) {
    goToLogin();
  }
  throw failure;
}

/** "2 minutes", "45 seconds": how long to wait, in words. */
export function waitWords(seconds) {
  const s = Math.max(1, Math.round(Number(seconds) || 0));
  if (s < 60) return s === 1 ? "1 second" : `${s} seconds`;
  const minutes = Math.ceil(s / 60);
  return minutes === 1 ? "1 minute" : `${minutes} minutes`;
}

const MESSAGES = {
  network_error: "The portal cannot be reached. Check your connection and try again.",
  invalid_credentials: "The customer ID or email and the password do not match. Check both and try again.",
  unauthenticated: "Your session has ended. Please log in again.",
  csrf_failed: "This page is out of date. Reload the page and try again.",
  invalid_token: "This link is not valid any more: it was already used or has expired.",
  weak_password: "The new password does not meet the rules below.",
  card_declined: "Your card was declined. Try another card or contact your bank.",
  insufficient_funds: "The card has insufficient funds. Try another card.",
  authentication_failed:
    "Your bank did not confirm the payment, so nothing was charged. Pay again to retry, or try another card.",
  card_not_accepted: "This page is out of date: card numbers are no longer taken here. Reload the page and try again.",
  purchase_not_found: "This payment is no longer waiting for your bank's confirmation. Check your payment history before paying again.",
  payment_failed: "The payment did not go through. Check the card details or try another card.",
  payment_unconfirmed:
    "We could not confirm the payment with the card issuer yet. Check your payment history in a few minutes before trying again.",
  license_not_found: "This license is not in your account.",
  installation_not_found: "This installation is not part of the license any more. Reload the page.",
  recurring_payment_not_found: "This recurring payment is not in your account. Reload the page.",
  payment_not_found: "This receipt is not in your account.",
  plan_not_found: "This plan is no longer on sale. Choose another plan.",
  no_seats_available: "All seats of this license are in use.",
  license_expired: "This license has expired. Renew it to continue.",
  license_suspended: "This license is suspended. Please contact support.",
  recurring_payment_ended:
    "The paid period of this recurring payment has ended, so it cannot be resumed. Renew the license from Buy or renew.",
  idempotency_key_reused:
    "This payment attempt was already sent with other details. Reload the page and try again.",
  product_archived: "This product is no longer on sale. Please contact sales.",
  product_not_found: "This product is no longer on sale. Please contact sales.",
  service_unavailable: "This part of the portal is temporarily unavailable. Please try again in a moment.",
  internal_error: "Something went wrong on our side. Please try again; if it keeps happening, contact support.",
  not_found: "This item was not found. It may have been removed.",
  payload_too_large: "What you entered is too long.",
  forbidden: "Your role does not allow this. Ask an owner of your account.",
  user_not_found: "This user is no longer in your account. Reload the page.",
  email_taken: "This email address already belongs to a user of the portal. Use another address.",
  last_owner:
    "Your account must keep at least one active owner. Make another user an owner first.",
  contact_is_owner:
    "The company's contact is always an owner. To change the contact, contact support.",
  invitation_not_pending: "This user has already accepted the invitation. Reload the page.",
  lease_not_found: "This lease is not part of the license any more. Reload the page.",
  lease_expired: "This lease has already ended.",
  floating_license: "This license is floating: the software checks out a seat instead of activating.",
  node_locked_license: "This license is node-locked: the software activates it instead.",
};

/** [["card.number", "The card number is invalid."], ...] from nested `details.fields`. */
export function fieldProblems(fields, prefix = "") {
  const found = [];
  for (const [name, value] of Object.entries(fields || {})) {
    const path = prefix ? `${prefix}.${name}` : name;
    if (typeof value === "string") found.push([path, value]);
    else if (Array.isArray(value)) {
      for (const item of value) {
        if (typeof item === "string") found.push([path, item]);
        else found.push(...fieldProblems(item, path));
      }
    } else if (value && typeof value === "object") found.push(...fieldProblems(value, path));
  }
  return found;
}

/** A sentence for the customer: `overrides` win, then the code table, then the API's message. */
export function messageFor(error, overrides = {}) {
  if (!(error instanceof ApiError)) {
    return "Something went wrong in this page. Reload it and try again.";
  }
  if (error.code === "too_many_attempts") {
    const wait = error.retryAfter ? ` Try again in ${waitWords(error.retryAfter)}.` : " Try again later.";
    return (overrides.too_many_attempts || "Too many attempts in a short time.") + wait;
  }
  if (overrides[error.code]) return overrides[error.code];
  if (error.code === "validation_error" || error.code === "weak_password") {
    const problems = fieldProblems(error.details.fields || {});
    if (problems.length) return problems.map(([, text]) => text).join(" ");
  }
  if (MESSAGES[error.code]) return MESSAGES[error.code];
  if (error.status >= 500) return MESSAGES.internal_error;
  return error.message || "The request could not be completed. Please try again.";
}

// --- formatting -------------------------------------------------------------------------

// the browser's own locale (Intl picks it); the page's lang only when the browser gives none
export const USER_LOCALE =
  (typeof navigator !== "undefined" && (navigator.languages?.[0] || navigator.language)) || LOCALE;

// the ISO 4217 codes this browser's Intl has data for (all of them: XOF, IQD…); empty in a
// browser without Intl.supportedValuesOf, where a code's output tells instead (¤ below)
const CURRENCIES = new Set(Intl.supportedValuesOf?.("currency") || []);

/** The currency's minor units as Intl knows them (JPY 0, XOF 0, KWD 3, EUR 2); null for a code
 * Intl does not know, which the portal writes as the server does: "ABC 1.00". */
function minorDigits(code) {
  if (CURRENCIES.size && !CURRENCIES.has(code)) return null;
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency: code }).resolvedOptions()
      .maximumFractionDigits;
  } catch (cause) {
    return null; // not even a well-formed code
  }
}

/**
 * Integer minor units in the browser's locale with the currency's symbol and decimals:
 * formatMoney(245000, "EUR") → "€2,450.00", formatMoney(5000, "JPY") → "¥5,000",
 * formatMoney(100, "XXY") → "XXY 1.00" (a code Intl does not know: code, space, 2 decimals).
 * The decimal string is built with integer arithmetic (no float ever rounds a cent).
 */
export function formatMoney(minor, currency) {
  if (minor === null || minor === undefined || minor === "" || !currency) return "—";
  const code = String(currency).toUpperCase();
  const known = minorDigits(code);
  const digits = known ?? 2;
  let value;
  try {
    value = BigInt(minor);
  } catch (cause) {
    return "—";
  }
  const negative = value < 0n;
  if (negative) value = -value;
  const scale = 10n ** BigInt(digits);
  const whole = (value / scale).toString();
  const fraction = digits ? "." + (value % scale).toString().padStart(digits, "0") : "";
  if (known !== null) {
    try {
      const text = new Intl.NumberFormat(USER_LOCALE, {
        style: "currency",
        currency: code,
        minimumFractionDigits: digits,
        maximumFractionDigits: digits,
      }).format(`${negative ? "-" : ""}${whole}${fraction}`);
      if (!text.includes("\u00a4")) return text; // ¤: a code Intl has no symbol for
    } catch (cause) {
      // falls through to the code and the number, as the server writes an unknown code
    }
  }
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}${code} ${grouped}${fraction}`;
}

/** A calendar date in the browser's locale, dateStyle medium: "Dec 7, 2026" (the UTC day). */
export function formatDate(iso) {
  if (!iso) return "—";
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "—";
  return new Intl.DateTimeFormat(USER_LOCALE, { dateStyle: "medium", timeZone: "UTC" }).format(when);
}

/** A moment in the browser's zone, with the zone's name: "Dec 7, 2026, 9:00 AM UTC". */
export function formatDateTime(iso) {
  if (!iso) return "—";
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "—";
  const day = new Intl.DateTimeFormat(USER_LOCALE, { dateStyle: "medium" }).format(when);
  const time = new Intl.DateTimeFormat(USER_LOCALE, { hour: "numeric", minute: "2-digit", timeZoneName: "short" }).format(when);
  return `${day}, ${time}`;
}

/** Older name of formatMoney: every page shows money in the one format. */
export function money(amount, currency) {
  return formatMoney(amount, currency);
}

/** An API item's `amount` and `currency` as formatMoney writes them: the portal formats every
 * amount itself, in the browser's locale, so a page shows money one way (the server's English
 * `amount_formatted` is for API clients and emails). */
export function amountOf(item) {
  return formatMoney(item?.amount, item?.currency);
}

/** Older names of formatDate / formatDateTime. */
export function date(iso) {
  return formatDate(iso);
}

export function dateTime(iso) {
  return formatDateTime(iso);
}

const INTERVALS = { month: "month", year: "year", week: "week", day: "day" };
export function per(interval) {
  return INTERVALS[interval] || interval;
}

export function capitalize(text) {
  return text ? text.charAt(0).toUpperCase() + text.slice(1).replace(/_/g, " ") : "";
}

// --- the session's role -----------------------------------------------------------------

// the role of the logged-in user, as the page was rendered for it (`data-role` on <body>);
// pages leave out what the role cannot do, and the API checks every call anyway
export const ROLE = document.body?.dataset.role || "";
export const LICENSE_ADMINS = ["owner", "license_admin"];
export const BILLING_USERS = ["owner", "billing"];
export const ROLE_LABELS = {
  owner: "Owner",
  license_admin: "License admin",
  billing: "Billing",
  viewer: "Viewer",
};

/** Whether the session's role is one of `roles`. */
export function may(roles) {
  return roles.includes(ROLE);
}

/** Who did something, as the activity page and the history name them. */
export function actorLabel(actor) {
  switch (actor?.type) {
    case "user":
      return actor.email || "A user";
    case "staff":
      return "Staff";
    case "product":
      return "The product";
    case "system":
      return "System";
    default:
      return "—";
  }
}

// --- DOM helpers ------------------------------------------------------------------------

/** h("a", {href: "/x", class: "y"}, "text", child): a small element builder (text is escaped). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function $(selector) {
  return document.querySelector(selector);
}

export function show(element, text) {
  if (text !== undefined) element.textContent = text;
  element.hidden = false;
}

export function hide(element) {
  element.hidden = true;
}

/** Whether `error` says a service or the network is down for now (worth a Retry). */
export function isOutage(error) {
  if (!(error instanceof ApiError)) return false;
  return error.code === "network_error" || error.code === "service_unavailable" ||
    error.status === 0 || error.status === 502 || error.status === 503 || error.status === 504;
}

/**
 * Shows the error in `element` (an alert) and moves the screen reader there. An outage (a
 * service down, the network lost) gets a Retry button that runs `options.retry` (the load that
 * failed): given, or, for a page's load error (`#error`), reloading the page. Once the Retry
 * worked, the focus goes to `options.focus` (an element, or a function that finds it: the
 * loaded content), else to the heading of the part of the page the message is in.
 */
export function showError(element, error, overrides, options = {}) {
  element.textContent = typeof error === "string" ? error : messageFor(error, overrides);
  const retry = options.retry || (element.id === "error" ? () => window.location.reload() : null);
  if (retry && isOutage(error)) element.append(" ", retryButton(element, retry, options.focus));
  element.hidden = false;
}

/** The heading of the section (or panel, or dialog) `element` is in, else the page's (a
 * visually hidden heading would take the focus out of sight). */
function headingNear(element) {
  const part = element.closest("section, .panel, dialog");
  const seen = (heading) => !heading.closest(".visually-hidden, [hidden]");
  return [...(part?.querySelectorAll("h1, h2, h3") || [])].find(seen) || document.querySelector("main h1, h1");
}

/** Moves the keyboard (and a screen reader) to `target`, focusable or not (a heading). */
export function focusOn(target) {
  if (!target) return;
  if (!target.matches("a[href], button, input, select, textarea, [tabindex]")) target.tabIndex = -1;
  target.focus();
}

/** "Retry": hides the message and runs `retry` again (the button busy meanwhile). */
function retryButton(element, retry, focus) {
  const button = h("button", { type: "button", class: "button button-secondary button-small retry" }, "Retry");
  button.addEventListener("click", async () => {
    await busy(button, "Retrying…", async () => {
      try {
        await retry();
      } catch (cause) {
        // the load shows its own error again
      }
    });
    if (element.contains(button)) {
      // it worked: the button goes with the message, the keyboard to what was loaded (unless
      // the load put it somewhere already, such as a form's first field)
      const now = document.activeElement;
      hide(element);
      if (!now || now === document.body || element.contains(now)) {
        focusOn((typeof focus === "function" ? focus() : focus) || headingNear(element));
      }
    } else {
      // failed again: the load replaced the message (and its Retry), which takes the focus
      element.querySelector("button.retry")?.focus();
    }
  });
  return button;
}

/** Disables the button and changes its label while `promise` runs. */
export async function busy(button, label, work) {
  const original = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.classList.add("is-busy");
  button.textContent = label;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.classList.remove("is-busy");
    button.textContent = original;
  }
}

/** Stops the page's loading line; hands back to the caller. */
export function loaded(...panels) {
  const loading = document.getElementById("loading");
  if (loading) loading.hidden = true;
  for (const panel of panels) panel?.removeAttribute("aria-busy");
}

const BADGES = {
  active: ["Active", "ok"],
  expired: ["Expired", "bad"],
  suspended: ["Suspended", "bad"],
  deactivated: ["Deactivated", "neutral"],
  cancelled: ["Cancelled", "neutral"],
  canceled: ["Cancelled", "neutral"],
  past_due: ["Past due", "warn"],
  paid: ["Paid", "ok"],
  succeeded: ["Paid", "ok"],
  refunded: ["Refunded", "neutral"],
  disputed: ["Disputed", "bad"],
  failed: ["Failed", "bad"],
  pending: ["Pending", "warn"],
  invited: ["Invited", "warn"],
  disabled: ["Disabled", "neutral"],
  live: ["In use", "ok"],
  checked_in: ["Checked in", "neutral"],
  revoked: ["Revoked", "neutral"],
};

export function badge(status) {
  const [label, tone] = BADGES[status] || [capitalize(status || "unknown"), "neutral"];
  return h("span", { class: `badge badge-${tone}` }, label);
}

/** A confirmation in the page's <dialog>; resolves to true when confirmed. */
export function confirmDialog({ title, text, confirm = "Confirm", cancel = "Cancel", danger = false }) {
  const dialog = document.getElementById("confirm-dialog");
  const ok = document.getElementById("confirm-ok");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-cancel").textContent = cancel;
  ok.textContent = confirm;
  ok.className = danger ? "button button-danger" : "button";
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    document.getElementById("confirm-cancel").focus();
  });
}

/** Live check of the password rules the server applies (the server still decides). */
export function passwordRules(input, list, identity = {}) {
  const known = [identity.customerId, identity.email].filter(Boolean);
  const check = () => {
    const value = input.value;
    const lowered = value.toLowerCase();
    const results = {
      length: value.length >= 10 && value.length <= 128,
      spaces: value.length > 0 && value.trim() === value,
      variety: new Set(value).size >= 4,
      // unknown before logging in (reset page): the server checks it when saving
      identity: known.length
        ? value.length > 0 && !known.some((item) => lowered.includes(String(item).toLowerCase()))
        : null,
    };
    for (const item of list.querySelectorAll("[data-rule]")) {
      const met = results[item.dataset.rule];
      item.classList.toggle("met", met === true);
      item.classList.toggle("unchecked", met === null);
      let state = item.querySelector(".rule-state");
      if (!state) {
        state = h("span", { class: "visually-hidden rule-state" });
        item.append(state);
      }
      state.textContent = met === null ? " (checked when you save)" : met ? " (met)" : " (not met yet)";
    }
    return Object.values(results).every((met) => met !== false);
  };
  input.addEventListener("input", check);
  check();
  return check;
}

// A page that sets a password with the token of an emailed link (a reset, a new company's
// set-up, an invitation). The token comes in the URL fragment (never sent to a server in a
// URL or a Referer) and is dropped from the address bar at once. It is checked before the
// form is shown (`POST /api/v1/password-resets/check`, which does not use it up): a link
// already used, expired or unknown says so at once, through `dead(reason)` ("used",
// "expired", "unknown", or "incomplete" without a token), before any typing; a working one
// calls `ready({purpose, email, company_name})` and shows the form. The form is posted, with
// `post(token, password)`, only once the password meets the rules and both entries agree.
// `done()` shows the success, `failed(error)` a refusal (an `invalid_token` one goes to
// `dead` too: the link died while the form was open).
export function tokenPasswordForm({ form, error, notMet, post, done, failed, ready, dead }) {
  const token = new URLSearchParams(window.location.hash.slice(1)).get("token") || "";
  history.replaceState(null, "", window.location.pathname);
  // another link opened in this tab changes only the fragment: the page starts over with it
  window.addEventListener("hashchange", () => {
    if (new URLSearchParams(window.location.hash.slice(1)).get("token")) window.location.reload();
  });
  const checking = document.getElementById("link-checking");
  const linkError = document.getElementById("link-error");
  let rulesMet = () => false;
  form.hidden = true;

  const open = (info) => {
    if (checking) checking.hidden = true;
    rulesMet = passwordRules(form.new_password, $("#rules"), { email: info?.email });
    ready?.(info);
    form.hidden = false;
    form.new_password.focus();
  };

  const check = async () => {
    if (linkError) linkError.hidden = true;
    try {
      const info = await api("/api/v1/password-resets/check", {
        method: "POST",
        body: { token },
        stayOn401: true,
      });
      open(info);
    } catch (failure) {
      if (checking) checking.hidden = true;
      if (failure.code === "invalid_token") {
        dead(failure.details?.reason || "unknown");
      } else if (isOutage(failure) || failure.code === "too_many_attempts") {
        showError(linkError, failure, {
          network_error: "Your link could not be checked: the portal cannot be reached. " +
            "Check your connection and try again.",
          service_unavailable: "Your link could not be checked: this part of the portal is " +
            "temporarily unavailable. Please try again in a moment.",
        }, { retry: check });
      } else if (failure instanceof ApiError && failure.status >= 400 && failure.status < 500) {
        // any other refusal of the link (a 422 for a garbled token, a 404…): it does not work,
        // and a form for it could only fail after the typing
        dead("unknown");
      } else {
        open(null); // no answer on the link itself (a 500): setting the password says
      }
    }
  };

  if (!token) {
    if (checking) checking.hidden = true;
    dead("incomplete");
  } else {
    check();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    hide(error);
    const password = form.new_password.value;
    if (!rulesMet()) {
      showError(error, notMet);
      form.new_password.focus();
      return;
    }
    if (password !== form.confirm_password.value) {
      showError(error, "The two passwords are not the same.");
      form.confirm_password.focus();
      return;
    }
    const button = form.querySelector("button[type=submit]");
    try {
      await busy(button, "Saving…", () => post(token, password));
      form.hidden = true;
      done();
    } catch (failure) {
      if (failure instanceof ApiError && failure.code === "invalid_token") {
        form.hidden = true;
        dead(failure.details?.reason || "unknown");
        return;
      }
      failed(failure);
    }
  });
}

/** The message of a dead link: what happened to it, in one sentence. */
export const DEAD_LINK = {
  used: "This link was already used.",
  expired: "This link has expired.",
  unknown: "This link is not valid: it may be mistyped or replaced by a newer one.",
  incomplete: "This link is incomplete: open it again from the email, all of it.",
};
