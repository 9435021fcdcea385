// License details: its name and note (edited by owners and license admins), its renewal,
// a banner when it is suspended or expired (with Renew only when a plan of its product is
// on sale), data and modules, activation password (reveal, copy, rotate), the machines it is
// activated on (license-machines.js), offline activation and deactivation of air-gapped
// machines (request, response and proof files), and the activation history. A floating
// license (design §13) shows its live leases (revoke) and its peak use per day instead of the
// installations and offline panels, which do not apply to it.
import {
  $, ApiError, BILLING_USERS, LICENSE_ADMINS, api, badge, busy, capitalize, confirmDialog,
  formatDate, formatDateTime, formatMoney, h, loaded, may, messageFor, showError,
} from "/static/portal.js";
import {
  SOURCES, expiryCell, featureNames, isFloating, licenseName, productName, renewable, seatsWords,
} from "/static/license-cells.js";
import { labelEditor } from "/static/license-label.js";
import { machines } from "/static/license-machines.js";

const licenseId = document.querySelector("main").dataset.licenseId;
const base = `/api/v1/licenses/${encodeURIComponent(licenseId)}`;
const MASK = "••••-••••-••••-••••";
// the gateway refuses bigger files (design §11); said here before the upload
const MAX_FILE_BYTES = 16 * 1024;
const EVENTS = {
  activated: "Activated",
  reactivated: "Activated again",
  deactivated: "Deactivated",
  activation_refused: "Activation refused",
  lease_checked_out: "Seat checked out",
  lease_checked_in: "Seat checked in",
  lease_revoked: "Lease revoked",
  lease_expired: "Lease expired",
  lease_refused: "Check-out refused",
};
const USAGE_DAYS = 30;
// how often the leases table is fetched again while the page is in view
const LEASES_REFRESH_MS = 30000;

// the page has no password block and no Deactivate for a role that may not use them
const admin = may(LICENSE_ADMINS);
const buyer = may(BILLING_USERS);
let password = "";
let revealed = false;
let historyBefore = null;
let responseUrl = null; // the Blob URL of the last response file, revoked when replaced
let seats = 0; // of the license, for the lease count
let shown = null; // the license as the page shows it
let catalog = null; // plans on sale (billing roles): whether Renew is offered
let recurring = null; // the license's recurring payment (billing roles): its card
const machineList = machines({ licenseId, base, admin, changed: refreshMachines });

function renderPassword() {
  if (!admin) return;
  const output = $("#activation-password");
  output.textContent = revealed ? password : MASK;
  output.classList.toggle("is-masked", !revealed);
  const reveal = $("#reveal");
  reveal.textContent = revealed ? "Hide" : "Show";
  reveal.setAttribute("aria-pressed", String(revealed));
}

function sentence(text) {
  return text && !/[.!?]$/.test(text) ? `${text}.` : text || "";
}

function renderHeader(license) {
  const product = productName(license);
  const title = $("#license-title");
  if (license.nickname) {
    title.replaceChildren(license.nickname);
    $("#license-subtitle").replaceChildren(`${product} · License `,
      h("span", { class: "mono" }, license.license_id));
  } else {
    title.replaceChildren("License ", h("span", { class: "mono" }, license.license_id));
    $("#license-subtitle").textContent = product;
  }
  const note = $("#license-note");
  note.textContent = license.note || "";
  note.hidden = !license.note;
  $("#license-status").replaceChildren(badge(license.status));
  document.title = `${licenseName(license)} ${license.license_id} · License Portal`;
}

// suspended: why, and what to do (no Renew, no countdown); expired: renew to reactivate
function renderBanners(license) {
  const suspended = license.status === "suspended";
  const disputed = license.suspension_cause === "payment_disputed";
  const reason = suspended ? license.suspension_reason || "" : "";
  $("#suspension").hidden = !suspended;
  $("#suspension-reason").textContent = reason ? `Reason: ${sentence(reason)}` : "";
  $("#suspension-todo").textContent = disputed
    ? "A payment for this license is disputed with the card issuer: it is resumed when the " +
      "dispute is settled. To settle it sooner, contact support."
    : "To have it resumed, contact support.";
  $("#f-suspension-row").hidden = !reason;
  $("#f-suspension-reason").textContent = reason;

  const expired = license.status === "expired";
  const canRenew = renewable(license, catalog);
  $("#expired-banner").hidden = !expired;
  if (expired) {
    $("#expired-on").textContent = formatDate(license.expires_at);
    const product = productName(license);
    let todo;
    if (!buyer) todo = "An owner or a billing user of your account can renew it to reactivate it.";
    else if (canRenew) todo = "Renew it to reactivate it: the same license ID, activation password and machines work again.";
    else if (catalog) todo = `No plan of ${product} is on sale now: contact sales to reactivate it.`;
    else todo = "Renew it to reactivate it from Buy when the plans can be loaded again.";
    $("#expired-todo").textContent = todo;
  }
  const reactivate = $("#reactivate");
  if (reactivate) reactivate.hidden = !(expired && canRenew);
  const renew = $("#renew"); // only for roles that may buy
  if (renew) renew.hidden = expired || !canRenew; // the banner offers it for an expired one
}

const BRANDS = { visa: "Visa", mastercard: "Mastercard", amex: "American Express", discover: "Discover", jcb: "JCB" };
function brandName(brand) {
  return BRANDS[brand] || (brand && brand !== "unknown" ? capitalize(brand) : "the card");
}

/** The renewal panel's sentence, and links for the roles that may act on it. */
function renderRenewal(license) {
  const panel = $("#renewal");
  const renewal = license.renewal;
  // an older gateway says nothing about renewals; a suspended or expired license has its
  // banner, a perpetual one never renews
  if (renewal === undefined || license.status !== "active" || !license.expires_at) {
    panel.hidden = true;
    return;
  }
  const ends = formatDate(license.expires_at);
  const price = renewal?.amount != null && renewal?.currency ? formatMoney(renewal.amount, renewal.currency) : "";
  const card = recurring?.card_last4 ? `${brandName(recurring.card_brand)} ····${recurring.card_last4}` : "";
  const links = [];
  const manage = (text) => h("a", { href: "/recurring-payments", class: "button button-secondary button-small" }, text);
  let text;
  let tone = "";
  switch (renewal?.status) {
    case "automatic":
      text = `Renews automatically on ${formatDate(renewal.next_charge_at || license.expires_at)}` +
        `${price ? ` for ${price}` : ""}${card ? ` with ${card}` : ""}.`;
      if (buyer) links.push(manage("Manage automatic renewal"));
      break;
    case "past_due":
      text = `The automatic payment${price ? ` of ${price}` : ""} for this license failed; it is ` +
        `being retried. If it keeps failing, the license ends on ${ends}.` +
        (buyer ? " Check the card, or pay with another one." : " An owner or a billing user can change the card.");
      tone = "warn";
      if (buyer) links.push(manage("Change the card"));
      break;
    case "cancelled":
      text = `Auto-renew off: the license ends on ${ends}.`;
      if (buyer && (!recurring || recurring.cancelled_by === "customer" || !recurring.cancelled_by)) {
        links.push(manage("Turn automatic renewal back on"));
      }
      break;
    case "none":
      text = `No automatic renewal: the license ends on ${ends}.`;
      break;
    default:
      text = "The renewal of this license cannot be shown right now.";
  }
  $("#renewal-text").textContent = text;
  $("#renewal-actions").replaceChildren(...links);
  $("#renewal-actions").hidden = links.length === 0;
  panel.classList.toggle("renewal-warn", tone === "warn");
  panel.dataset.renewal = renewal?.status || "unknown";
  panel.hidden = false;
}

function renderLicense(license) {
  shown = license;
  const product = productName(license);
  renderHeader(license);
  $("#f-license-id").textContent = license.license_id;
  $("#f-product").textContent = product;
  const modules = featureNames(license);
  $("#f-features").textContent = modules || "None";
  for (const code of document.querySelectorAll(".offline-product")) {
    code.textContent = license.product?.code || code.textContent;
  }
  $("#f-seats").textContent = seatsWords(license);
  $("#f-model").textContent = modelWords(license);
  seats = license.seats;
  showModelPanels(isFloating(license));
  $("#f-expires").replaceChildren(expiryCell(license));
  $("#f-status").replaceChildren(badge(license.status));
  renderBanners(license);
  renderRenewal(license);
  $("#f-created").textContent = formatDate(license.created_at);
}

/** "Node-locked" or "Floating: leases of 15 minutes, borrowing up to 7 days". */
function modelWords(license) {
  if (!isFloating(license)) return "Node-locked: activated on each machine";
  const minutes = Math.round((license.lease_seconds || 0) / 60);
  const lease = minutes >= 60 && minutes % 60 === 0
    ? `${minutes / 60} hour${minutes === 60 ? "" : "s"}`
    : `${minutes} minute${minutes === 1 ? "" : "s"}`;
  const days = license.max_borrow_days || 0;
  const borrowing = days ? `borrowing up to ${days} day${days === 1 ? "" : "s"}` : "no borrowing";
  return `Floating: leases of ${lease}, ${borrowing}`;
}

// the panels of the license's model: leases and use for a floating license; installations
// and offline files (which a floating license refuses) for a node-locked one
function showModelPanels(floating) {
  $("#leases-panel").hidden = !floating;
  $("#usage-panel").hidden = !floating;
  $("#installations-panel").hidden = floating;
  const offline = $("#offline"); // only for roles that may upload files
  if (offline) offline.hidden = floating;
  const hint = $("#password-hint");
  if (hint && floating) {
    hint.textContent = "Enter it with the license ID when the software asks for it: each running " +
      "copy then checks out a seat. It works for this license only.";
  }
  $("#history-empty").textContent = floating ? "No check-outs yet." : "No activations yet.";
}

// --- leases of a floating license (design §13) ----------------------------------------------

function renderLeases(leases) {
  const table = $("#leases");
  const body = table.tBodies[0];
  body.replaceChildren();
  $("#leases-count").textContent = `${leases.length} of ${seats} seats in use`;
  $("#leases-empty").hidden = leases.length > 0;
  table.hidden = leases.length === 0;
  for (const lease of leases) {
    const name = lease.machine_name || lease.installation_id;
    const action = admin
      ? h("button", {
          type: "button",
          class: "button button-danger-quiet button-small",
          onclick: (event) => revoke(lease, event.currentTarget),
        }, "Revoke", h("span", { class: "visually-hidden" }, ` the lease of ${name}`))
      : "";
    body.append(h("tr", { dataset: { leaseId: lease.lease_id } },
      h("td", { "data-label": "Machine" }, h("strong", { class: "machine" }, name),
        h("span", { class: "small block" }, h("code", { class: "id-wrap" }, lease.installation_id))),
      h("td", { "data-label": "Since" }, formatDateTime(lease.started_at)),
      h("td", { "data-label": "Expires" }, formatDateTime(lease.expires_at)),
      h("td", { "data-label": "Borrowed until" }, lease.borrowed
        ? formatDateTime(lease.borrowed_until || lease.expires_at)
        : h("span", { class: "muted" }, "Not borrowed")),
      h("td", { class: "cell-action" }, action)));
  }
}

/** The UTC day `offset` days before today, as "2026-12-02". */
function utcDay(offset) {
  return new Date(Date.now() - offset * 86400000).toISOString().slice(0, 10);
}

function dayWords(day) {
  return formatDate(`${day}T00:00:00Z`); // a UTC day, as formatDate shows dates
}

// the peak per day as a bar chart of plain elements: each bar's height is set through the
// CSSOM (the CSP allows no style attribute in markup); each day says its value in words
function renderUsage(usage) {
  const peaks = new Map((usage?.days || []).map((day) => [day.date, day.peak]));
  $("#usage-peak").textContent = `${usage?.peak_30d ?? 0} of ${seats}`;
  const chart = $("#usage-chart");
  chart.replaceChildren();
  for (let offset = USAGE_DAYS - 1; offset >= 0; offset -= 1) {
    const day = utcDay(offset);
    const peak = peaks.get(day) || 0;
    const words = `${dayWords(day)}: ${peak} of ${seats}`;
    const fill = h("span", { class: peak >= seats ? "usage-fill full" : "usage-fill" });
    fill.style.height = `${seats ? Math.round(Math.min(1, peak / seats) * 100) : 0}%`;
    chart.append(h("li", { class: "usage-day", title: words, dataset: { date: day, peak } },
      h("span", { class: "usage-bar", "aria-hidden": "true" }, fill),
      h("span", { class: "visually-hidden" }, words)));
  }
  $("#usage-first").textContent = dayWords(utcDay(USAGE_DAYS - 1));
}

async function refreshLeases() {
  const { leases } = await api(`${base}/leases`);
  renderLeases(leases);
  $("#f-seats").textContent = seatsWords({ seats_in_use: leases.length, seats, model: "floating" });
}

async function revoke(lease, button) {
  const name = lease.machine_name || lease.installation_id;
  // a borrowed lease needs no heartbeat, so the machine, offline, never hears of the
  // revocation: its certificate works until the borrow ends, and the dialog must not promise
  // otherwise
  const text = lease.borrowed
    ? `${name} borrowed this seat until ${formatDateTime(lease.borrowed_until || lease.expires_at)}: ` +
      "revoking frees the seat here at once, but that machine may keep working offline until then."
    : `The seat of license ${licenseId} that ${name} holds is free at once. The software there ` +
      "learns it at its next renewal and has to check out a seat again.";
  const ok = await confirmDialog({
    title: `Revoke the lease of “${name}”?`,
    text,
    confirm: `Revoke the lease of ${name}`,
    danger: true,
  });
  if (!ok) {
    button.focus();
    return;
  }
  const status = $("#leases-status");
  try {
    await busy(button, "Revoking…", () =>
      api(`${base}/leases/${encodeURIComponent(lease.lease_id)}/revoke`, { method: "POST" }));
    say(status, `The lease of ${name} is revoked; its seat is free.`, true);
    await refreshLeases();
    loadHistory();
  } catch (failure) {
    say(status, messageFor(failure), false);
  }
}

// the leases change as machines start and stop: fetched again while the page is in view
// (the leases route, not the license: that would show the password to the audit trail again)
function keepLeasesFresh() {
  window.setInterval(() => {
    if (document.visibilityState !== "visible") return;
    refreshLeases().catch(() => {}); // the next round tries again; the table stays as it was
  }, LEASES_REFRESH_MS);
}

// the source of an event, and the user who acted when the history names one
function byCell(event) {
  const source = capitalize(SOURCES[event.source] || event.source || "—");
  const user = event.actor?.type === "user" ? event.actor.email : "";
  if (!user) return source;
  return h("div", {}, source, h("span", { class: "small muted block actor-email" }, user));
}

async function loadHistory(more = false) {
  const table = $("#history");
  const query = new URLSearchParams({ limit: "50" });
  if (more && historyBefore) query.set("before", historyBefore);
  try {
    const page = await api(`${base}/history?${query}`);
    const events = page.events || [];
    if (!more) table.tBodies[0].replaceChildren();
    for (const event of events) {
      table.tBodies[0].append(h("tr", {},
        h("td", { "data-label": "When" }, formatDateTime(event.at)),
        h("td", { "data-label": "Event" }, h("div", {}, EVENTS[event.type] || capitalize(event.type),
          event.reason ? h("span", { class: "small muted block" }, capitalize(event.reason)) : "")),
        h("td", { "data-label": "Machine" }, event.machine_name || "—"),
        h("td", { "data-label": "By" }, byCell(event))));
    }
    historyBefore = page.next_before || null;
    $("#history-more").hidden = !historyBefore;
    const any = table.tBodies[0].rows.length > 0;
    table.hidden = !any;
    $("#history-empty").hidden = any;
    $("#history-error").hidden = true;
  } catch (failure) {
    // after a Retry that worked, the focus goes to the History heading
    showError($("#history-error"), failure, {}, { retry: () => loadHistory(more) });
  }
}

// --- offline activation and deactivation (design §11) ------------------------------------

/** The text of a file the user picked or dropped (files are small JSON documents). */
function readText(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error);
    reader.readAsText(file);
  });
}

// a message in the panel's live region: ok (green), bad (red), or work in progress (null)
function say(element, text, ok = null) {
  element.className = ok === null ? "status-line" : `status-line ${ok ? "status-ok" : "status-bad"}`;
  element.textContent = text;
}

/** What went wrong with an uploaded file, in words (the server names the problem). */
function fileProblem(failure, kind) {
  if (failure instanceof ApiError) {
    if (failure.code === "invalid_request" || failure.code === "invalid_proof") {
      const problem = failure.details?.problem || failure.message;
      return `This ${kind} file was not accepted: ${problem}`;
    }
    if (failure.code === "no_seats_available") {
      const machines = failure.details?.machines || [];
      return `All seats are in use${machines.length ? ` (by ${machines.join(", ")})` : ""}. ` +
        "Deactivate one of these machines first, then upload the request again.";
    }
    if (failure.code === "validation_error") {
      return `This ${kind} file was not accepted: it is empty or not a text file.`;
    }
  }
  return messageFor(failure);
}

/** Makes a drop zone of `zone` and its file input: a picked or dropped file goes to `use`. */
function dropZone(zone, input, use) {
  let working = false;
  const take = async (file) => {
    if (!file || working) return;
    working = true;
    zone.classList.add("is-busy-zone");
    zone.setAttribute("aria-busy", "true");
    try {
      await use(file);
    } finally {
      working = false;
      zone.classList.remove("is-busy-zone");
      zone.removeAttribute("aria-busy");
      input.value = ""; // the same file can be picked again
    }
  };
  input.addEventListener("change", () => take(input.files[0]));
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    zone.classList.add("is-over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("is-over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("is-over");
    take(event.dataTransfer.files[0]);
  });
}

async function fileText(file, kind, status) {
  if (file.size > MAX_FILE_BYTES) {
    say(status, `This ${kind} file is too big (over 16 KiB): it is not a file written by license-client.`, false);
    return null;
  }
  try {
    return await readText(file);
  } catch (cause) {
    say(status, `The ${kind} file could not be read. Choose it again.`, false);
    return null;
  }
}

/** The seats in use as `installations` count them (a node-locked license's active ones). */
function showSeatsInUse(installations) {
  if (!shown || isFloating(shown)) return;
  shown = { ...shown, seats_in_use: installations.filter((item) => item.status === "active").length };
  $("#f-seats").textContent = seatsWords(shown);
}

// after an activation or a deactivation: the machines and the seats from the installations
// route, and the history. Not the license route: it shows the activation password, so each
// call would record a viewing of it in the audit trail. Rejects when the machines cannot be
// loaded (the change itself stands).
async function refreshMachines(known) {
  if (known) showSeatsInUse(known);
  loadHistory();
  const { installations = [] } = await api(`${base}/installations`);
  machineList.render(installations);
  showSeatsInUse(installations);
}

/** A change that worked, then the machines again; a failed reload said apart. */
async function thenRefresh(status) {
  try {
    await refreshMachines();
  } catch (failure) {
    status.append(" The list of machines could not be reloaded just now: reload the page to see the latest.");
  }
}

function offerResponse(text) {
  if (responseUrl) URL.revokeObjectURL(responseUrl);
  responseUrl = URL.createObjectURL(new Blob([text], { type: "application/json" }));
  const link = $("#response-download");
  link.href = responseUrl;
  $("#response-actions").hidden = false;
}

async function uploadRequest(file) {
  const status = $("#activation-status");
  $("#response-actions").hidden = true;
  say(status, `Reading ${file.name}…`);
  const text = await fileText(file, "request", status);
  if (text === null) return;
  say(status, "Activating…");
  try {
    const result = await api(`${base}/offline-activations`, {
      method: "POST",
      body: { request: text },
    });
    const activation = result.activation || {};
    const name = activation.machine_name || activation.installation_id || "The machine";
    offerResponse(result.response);
    say(status, `${name} is activated. Download the response file and run ` +
      "license-client offline-install with it on that machine.", true);
    $("#response-download").focus();
  } catch (failure) {
    say(status, fileProblem(failure, "request"), false);
    return;
  }
  await thenRefresh(status);
}

async function uploadProof(file) {
  const status = $("#deactivation-status");
  say(status, `Reading ${file.name}…`);
  const text = await fileText(file, "proof", status);
  if (text === null) return;
  say(status, "Deactivating…");
  try {
    const installation = await api(`${base}/offline-deactivations`, {
      method: "POST",
      body: { proof: text },
    });
    const name = installation.machine_name || installation.installation_id;
    say(status, `${name} is deactivated; its seat is free.`, true);
  } catch (failure) {
    say(status, fileProblem(failure, "proof"), false);
    return;
  }
  await thenRefresh(status);
}

async function copyPassword() {
  const status = $("#password-status");
  status.className = "status-line";
  try {
    await navigator.clipboard.writeText(password);
  } catch (cause) {
    // clipboard API unavailable (plain HTTP on another host): select the text instead
    revealed = true;
    renderPassword();
    const range = document.createRange();
    range.selectNodeContents($("#activation-password"));
    window.getSelection().removeAllRanges();
    window.getSelection().addRange(range);
    status.textContent = "Press Ctrl+C (or ⌘C) to copy the selected password.";
    return;
  }
  status.textContent = "Activation password copied.";
  status.classList.add("status-ok");
}

async function rotatePassword(button) {
  const ok = await confirmDialog({
    title: "Create a new activation password?",
    text: `The current activation password of license ${licenseId} stops working at once. ` +
      "Machines that are already activated stay activated; new activations need the new password.",
    confirm: "Create new password",
    danger: true,
  });
  if (!ok) {
    button.focus();
    return;
  }
  const status = $("#password-status");
  status.className = "status-line";
  try {
    const result = await busy(button, "Creating…", () =>
      api(`${base}/activation-password`, { method: "POST" }));
    password = result.activation_password;
    revealed = true;
    renderPassword();
    status.textContent = "New activation password created. The old one no longer works.";
    status.classList.add("status-ok");
  } catch (failure) {
    status.textContent = messageFor(failure);
    status.classList.add("status-bad");
  }
}

// what billing knows, for the roles that may see it: the plans on sale (Renew) and the
// license's recurring payment (its card); the page stands without them
async function billingFacts() {
  if (!buyer) return [null, null];
  const quietly = (promise) => promise.catch(() => null);
  const [plans, payments] = await Promise.all([
    quietly(api("/api/v1/catalog")),
    quietly(api("/api/v1/recurring-payments")),
  ]);
  return [plans, payments?.recurring_payments || null];
}

function recurringOf(license, payments) {
  if (!payments) return null;
  const id = license.renewal?.recurring_payment_id;
  const mine = payments.filter((item) => (id ? item.id === id : item.license_id === license.license_id));
  return mine.find((item) => item.status !== "cancelled") || mine[0] || null;
}

async function main() {
  try {
    const [license, [plans, payments]] = await Promise.all([api(base), billingFacts()]);
    loaded();
    catalog = plans;
    recurring = recurringOf(license, payments);
    password = license.activation_password || "";
    renderLicense(license);
    renderPassword();
    machineList.render(license.installations || []);
    if (isFloating(license)) {
      renderLeases(license.leases || []);
      renderUsage(license.usage);
      keepLeasesFresh();
    }
    $("#details").hidden = false;
    loadHistory();
  } catch (failure) {
    loaded();
    const error = $("#error");
    showError(error, failure);
    if (failure instanceof ApiError && failure.status === 404) {
      error.append(" ", h("a", { href: "/licenses" }, "Back to your licenses"));
    }
    return;
  }
  if (admin) {
    labelEditor({
      base,
      current: () => shown,
      saved: (license) => {
        // the PATCH answers the license view; keep what only the details carry
        renderLicense({ ...shown, ...license, renewal: license.renewal ?? shown.renewal });
        const status = $("#label-status");
        status.textContent = license.nickname
          ? `Saved: this license is now called “${license.nickname}”.`
          : "Saved.";
      },
    });
  }
  if (admin) {
    $("#reveal").addEventListener("click", () => {
      revealed = !revealed;
      renderPassword();
    });
    $("#copy").addEventListener("click", copyPassword);
    $("#rotate").addEventListener("click", (event) => rotatePassword(event.currentTarget));
    dropZone($("#request-drop"), $("#request-file"), uploadRequest);
    dropZone($("#proof-drop"), $("#proof-file"), uploadProof);
    // a file dropped just beside a zone must not replace the page with the file's text
    for (const type of ["dragover", "drop"]) {
      window.addEventListener(type, (event) => {
        if (event.dataTransfer?.types?.includes("Files")) event.preventDefault();
      });
    }
  }
  $("#history-more").addEventListener("click", () => loadHistory(true));
}

main();
