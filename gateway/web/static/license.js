// License details: data, activation password (reveal, copy, rotate), installations with
// deactivation, and the activation history.
import {
  $, ApiError, api, badge, busy, capitalize, confirmDialog, date, dateTime, h, loaded,
  messageFor, showError,
} from "/static/portal.js";
import { expiryCell } from "/static/license-cells.js";

const licenseId = document.querySelector("main").dataset.licenseId;
const base = `/api/v1/licenses/${encodeURIComponent(licenseId)}`;
const MASK = "••••-••••-••••-••••";
const SOURCES = { portal: "the portal", product: "the product", staff: "support staff" };
const EVENTS = {
  activated: "Activated",
  reactivated: "Activated again",
  deactivated: "Deactivated",
  activation_refused: "Activation refused",
};

let password = "";
let revealed = false;
let historyBefore = null;

function renderPassword() {
  const output = $("#activation-password");
  output.textContent = revealed ? password : MASK;
  output.classList.toggle("is-masked", !revealed);
  const reveal = $("#reveal");
  reveal.textContent = revealed ? "Hide" : "Show";
  reveal.setAttribute("aria-pressed", String(revealed));
}

function renderLicense(license) {
  const product = license.product?.name || license.product?.code || "";
  $("#license-subtitle").textContent = product;
  $("#license-status").replaceChildren(badge(license.status));
  $("#f-license-id").textContent = license.license_id;
  $("#f-product").textContent = product;
  $("#f-seats").textContent = `${license.seats_in_use ?? 0} of ${license.seats}`;
  $("#f-expires").replaceChildren(expiryCell(license));
  $("#f-status").replaceChildren(badge(license.status));
  const suspended = license.status === "suspended";
  const reason = suspended ? license.suspension_reason || "" : "";
  $("#suspension").hidden = !suspended;
  $("#suspension-reason").textContent = reason ? `Reason: ${reason}${/[.!?]$/.test(reason) ? "" : "."}` : "";
  $("#renew").hidden = suspended; // a suspended license cannot be renewed
  $("#f-suspension-row").hidden = !reason;
  $("#f-suspension-reason").textContent = reason;
  $("#f-created").textContent = date(license.created_at);
  document.title = `${product} ${license.license_id} · License Portal`;
}

function renderInstallations(installations) {
  const table = $("#installations");
  const body = table.tBodies[0];
  body.replaceChildren();
  const active = installations.filter((item) => item.status === "active").length;
  $("#installations-count").textContent =
    `${active} active · ${installations.length - active} deactivated`;
  $("#installations-empty").hidden = installations.length > 0;
  table.hidden = installations.length === 0;
  for (const item of installations) {
    const status = item.status === "active"
      ? badge("active")
      : h("span", {}, badge("deactivated"), h("span", { class: "small muted block" },
          `${dateTime(item.deactivated_at)}${item.deactivated_by ? ` by ${SOURCES[item.deactivated_by] || item.deactivated_by}` : ""}`));
    const action = item.status === "active"
      ? h("button", {
          type: "button",
          class: "button button-danger-quiet button-small",
          onclick: (event) => deactivate(item, event.currentTarget),
        }, "Deactivate", h("span", { class: "visually-hidden" }, ` ${item.machine_name}`))
      : "";
    body.append(h("tr", { dataset: { installationId: item.installation_id } },
      h("td", { "data-label": "Machine" }, h("strong", { class: "machine" }, item.machine_name || "—")),
      h("td", { "data-label": "Installation ID" }, h("code", { class: "id-wrap" }, item.installation_id)),
      h("td", { "data-label": "Activated" }, dateTime(item.activated_at)),
      h("td", { "data-label": "Status" }, status),
      h("td", { class: "cell-action" }, action)));
  }
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
        h("td", { "data-label": "When" }, dateTime(event.at)),
        h("td", { "data-label": "Event" }, h("div", {}, EVENTS[event.type] || capitalize(event.type),
          event.reason ? h("span", { class: "small muted block" }, capitalize(event.reason)) : "")),
        h("td", { "data-label": "Machine" }, event.machine_name || "—"),
        h("td", { "data-label": "By" }, capitalize(SOURCES[event.source] || event.source || "—"))));
    }
    historyBefore = page.next_before || null;
    $("#history-more").hidden = !historyBefore;
    const any = table.tBodies[0].rows.length > 0;
    table.hidden = !any;
    $("#history-empty").hidden = any;
  } catch (failure) {
    showError($("#history-error"), failure);
  }
}

async function refreshInstallations() {
  const { installations } = await api(`${base}/installations`);
  renderInstallations(installations);
}

async function deactivate(item, button) {
  const name = item.machine_name || item.installation_id;
  const ok = await confirmDialog({
    title: `Deactivate “${name}”?`,
    text: `The software on ${name} stops working with license ${licenseId} and its seat is freed at once. ` +
      "The machine can be activated again later.",
    confirm: `Deactivate ${name}`,
    danger: true,
  });
  if (!ok) {
    button.focus();
    return;
  }
  const status = $("#installations-status");
  status.className = "status-line";
  try {
    await busy(button, "Deactivating…", () =>
      api(`${base}/installations/${encodeURIComponent(item.installation_id)}/deactivate`, {
        method: "POST",
      }));
    status.textContent = `${name} is deactivated; its seat is free.`;
    status.classList.add("status-ok");
    const license = await api(base);
    renderLicense(license);
    renderInstallations(license.installations);
    loadHistory();
  } catch (failure) {
    status.textContent = messageFor(failure);
    status.classList.add("status-bad");
  }
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

async function main() {
  try {
    const license = await api(base);
    loaded();
    password = license.activation_password || "";
    renderLicense(license);
    renderPassword();
    renderInstallations(license.installations || []);
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
  $("#reveal").addEventListener("click", () => {
    revealed = !revealed;
    renderPassword();
  });
  $("#copy").addEventListener("click", copyPassword);
  $("#rotate").addEventListener("click", (event) => rotatePassword(event.currentTarget));
  $("#history-more").addEventListener("click", () => loadHistory(true));
}

main();
