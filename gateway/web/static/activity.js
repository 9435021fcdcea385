// Activity (owners only): the company's audit trail, newest first, a page at a time, with
// filters by user, action and dates (in the browser's time zone) and the same filters for
// the CSV download. Times are shown in the browser's local time, with the zone.
import {
  $, ROLE_LABELS, actorLabel, api, busy, capitalize, focusOn, formatDate, formatDateTime, formatMoney,
  h, loaded, showError,
} from "/static/portal.js";

const params = new URLSearchParams(window.location.search);
// events a page: 50, or the page's own `?limit=` (1 to 200, as the API takes)
const PAGE_SIZE = (() => {
  const asked = Number.parseInt(params.get("limit"), 10);
  return asked >= 1 && asked <= 200 ? asked : 50;
})();

const ACTIONS = {
  login_succeeded: "Logged in",
  login_failed: "Failed to log in",
  password_changed: "Changed their password",
  password_reset: "Reset their password",
  user_invited: "Invited a user",
  invitation_resent: "Resent an invitation",
  invitation_accepted: "Accepted the invitation",
  user_role_changed: "Changed a user's role",
  user_disabled: "Disabled a user",
  user_enabled: "Enabled a user",
  user_removed: "Removed a user",
  notification_preferences_changed: "Changed their email notifications",
  activation_password_viewed: "Viewed an activation password",
  activation_password_rotated: "Created a new activation password",
  installation_activated: "Activated a machine",
  installation_deactivated: "Deactivated a machine",
  offline_activation: "Activated a machine offline",
  lease_revoked: "Revoked a lease",
  purchase: "Paid a purchase",
  recurring_payment_cancelled: "Turned off a license's automatic renewal",
  recurring_payment_resumed: "Turned a license's automatic renewal back on",
  recurring_payment_card_changed: "Changed a recurring payment's card",
  billing_details_changed: "Changed the billing details",
  license_issued: "Issued a license",
  license_suspended: "Suspended a license",
  license_resumed: "Resumed a license",
  license_extended: "Extended a license",
  license_labelled: "Changed a license's nickname or note",
};
const TARGETS = {
  user: "User",
  license: "License",
  company: "Account",
  payment: "Payment",
  recurring_payment: "Recurring payment",
  installation: "Machine",
};

const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "";

const form = $("#filters");
// the fields by ID (a form's `action` property is its own attribute, not the field)
const fields = {
  user_id: $("#filter-user"),
  action: $("#filter-action"),
  since: $("#filter-since"),
  until: $("#filter-until"),
};
const table = $("#events");
let filters = {};
const emails = new Map(); // user ID → email, for events about a user that name only the ID
let nextBefore = null;

function when(iso) {
  return h("time", { datetime: iso }, formatDateTime(iso));
}

function target(event) {
  const { type, id } = event.target || {};
  if (!type || type === "company") return event.details?.email || TARGETS[type] || "—";
  if (type === "license" && id) {
    return h("span", {}, "License ", h("a", { href: `/licenses/${encodeURIComponent(id)}`, class: "mono nowrap" }, id));
  }
  if (type === "user") {
    const own = event.actor?.user_id === id ? event.actor.email : "";
    return event.details?.email || emails.get(id) || own || id || "A user";
  }
  return `${TARGETS[type] || capitalize(type)}${id ? ` ${id}` : ""}`;
}

function roleName(role) {
  return ROLE_LABELS[role] || capitalize(role || "");
}

// a few facts in words; anything else as "key: value"
function details(event) {
  const d = event.details || {};
  const parts = [];
  const known = new Set();
  const take = (...keys) => keys.forEach((key) => known.add(key));
  if (d.old_role || d.new_role) {
    parts.push(`${roleName(d.old_role)} → ${roleName(d.new_role)}`);
    take("old_role", "new_role");
  }
  if (d.role) {
    parts.push(`Role ${roleName(d.role)}`);
    take("role");
  }
  if (event.target?.type === "user" || !event.target?.type || event.target.type === "company") take("email");
  if (d.machine_name) {
    parts.push(`Machine ${d.machine_name}`);
    take("machine_name", "installation_id");
  }
  if (d.receipt_number) {
    parts.push(`Receipt ${d.receipt_number}`);
    take("receipt_number");
  }
  if (d.plan) {
    parts.push(`${d.plan}${d.seats ? `, ${d.seats} ${d.seats === 1 ? "seat" : "seats"}` : ""}`);
    take("plan", "seats");
  }
  if (d.amount !== undefined && d.currency) {
    parts.push(formatMoney(d.amount, d.currency));
    take("amount", "currency");
  }
  if (d.kind) {
    parts.push(d.kind === "renewal" ? (d.automatic ? "automatic renewal" : "renewal") : "new license");
    take("kind", "automatic");
  }
  if (d.card_brand || d.card_last4) {
    parts.push(`${capitalize(d.card_brand || "card")} •••• ${d.card_last4 || ""}`.trim());
    take("card_brand", "card_last4", "brand", "last4");
  }
  if (d.reason) {
    parts.push(capitalize(String(d.reason)));
    take("reason");
  }
  for (const [key, value] of Object.entries(d)) {
    if (known.has(key) || value === null || value === undefined || value === "") continue;
    let shown = typeof value === "object" ? JSON.stringify(value) : String(value);
    if (/^\d{4}-\d{2}-\d{2}T/.test(shown)) shown = formatDate(shown); // a time: its day is enough here
    parts.push(`${capitalize(key)}: ${shown}`);
  }
  return parts.join(" · ") || "—";
}

function row(event) {
  return h("tr", { dataset: { eventId: event.event_id, action: event.action } },
    h("td", { "data-label": "When", class: "when-cell" }, when(event.at)),
    h("td", { "data-label": "Who", class: "who-cell" }, actorLabel(event.actor)),
    h("td", { "data-label": "Action" }, ACTIONS[event.action] || capitalize(event.action)),
    h("td", { "data-label": "On" }, target(event)),
    h("td", { "data-label": "Details", class: "details-cell" }, details(event)));
}

/** Midnight at the start of `day` (YYYY-MM-DD) in the browser's time zone, as ISO 8601. */
function localMidnight(day, addDays = 0) {
  const [year, month, date] = day.split("-").map(Number);
  return new Date(year, month - 1, date + addDays).toISOString();
}

/** The API's query for the form's filters (the "To" day included). */
function query(extra = {}) {
  const out = new URLSearchParams();
  if (filters.user_id) out.set("user_id", filters.user_id);
  if (filters.action) out.set("action", filters.action);
  if (filters.since) out.set("since", localMidnight(filters.since));
  if (filters.until) out.set("until", localMidnight(filters.until, 1));
  for (const [key, value] of Object.entries(extra)) out.set(key, value);
  return out;
}

function readForm() {
  return {
    user_id: fields.user_id.value,
    action: fields.action.value,
    since: fields.since.value,
    until: fields.until.value,
  };
}

function writeForm() {
  fields.user_id.value = filters.user_id || "";
  fields.action.value = filters.action || "";
  fields.since.value = filters.since || "";
  fields.until.value = filters.until || "";
}

function syncAddress() {
  const shown = new URLSearchParams();
  for (const key of ["user_id", "action", "since", "until"]) if (filters[key]) shown.set(key, filters[key]);
  if (params.get("limit")) shown.set("limit", params.get("limit"));
  const search = shown.toString();
  history.replaceState(null, "", window.location.pathname + (search ? `?${search}` : ""));
  $("#csv").href = `/api/v1/audit-events?${query({ format: "csv" })}`;
}

async function loadPage() {
  const page = await api(`/api/v1/audit-events?${query({ limit: String(PAGE_SIZE), ...(nextBefore ? { before: nextBefore } : {}) })}`);
  const first = !nextBefore;
  const events = page.events || [];
  if (first) table.tBodies[0].replaceChildren();
  for (const event of events) table.tBodies[0].append(row(event));
  nextBefore = page.next_before || null;
  $("#more").hidden = !nextBefore;
  const any = table.tBodies[0].rows.length > 0;
  table.hidden = !any;
  $("#empty").hidden = any;
  const count = events.length;
  $("#events-status").textContent = first
    ? `${count} ${count === 1 ? "event" : "events"} shown${nextBefore ? "; more can be loaded" : ""}.`
    : `${count} older ${count === 1 ? "event" : "events"} shown${nextBefore ? "." : ": that is all of them."}`;
}

async function reload() {
  nextBefore = null;
  $("#error").hidden = true;
  $("#more-error").hidden = true;
  syncAddress();
  try {
    await loadPage();
  } catch (failure) {
    table.hidden = true;
    $("#more").hidden = true;
    // a Retry loads the events again (with the same filters); the focus then goes to them
    showError($("#error"), failure, {}, { retry: reload, focus: eventsShown });
  }
}

/** Where the keyboard goes once events are loaded again: the first row, else the heading. */
function eventsShown() {
  return table.hidden ? $("#events-title") : table.tBodies[0].rows[0];
}

async function loadUsers() {
  try {
    const { users } = await api("/api/v1/users");
    const select = fields.user_id;
    for (const user of users || []) {
      emails.set(user.user_id, user.email);
      select.append(h("option", { value: user.user_id }, user.name ? `${user.name} (${user.email})` : user.email));
    }
  } catch (failure) {
    // the filter by user is optional: the page works without it
  }
}

function fillActions() {
  for (const [value, label] of Object.entries(ACTIONS)) {
    fields.action.append(h("option", { value }, label));
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = $("#filters-error");
  error.hidden = true;
  const wanted = readForm();
  if (wanted.since && wanted.until && wanted.since > wanted.until) {
    showError(error, "The “From” day is after the “To” day.");
    fields.since.focus();
    return;
  }
  filters = wanted;
  await busy($("#apply"), "Loading…", reload);
});

$("#clear").addEventListener("click", async (event) => {
  filters = {};
  writeForm();
  await busy(event.currentTarget, "Loading…", reload);
});

/** The next (older) page of events; the keyboard goes on where the new rows begin. A
 * failure is shown with a Retry that loads the same page again. */
async function loadMore(button) {
  const error = $("#more-error");
  error.hidden = true;
  const before = table.tBodies[0].rows.length;
  const firstNew = () => table.tBodies[0].rows[before];
  try {
    await busy(button, "Loading…", loadPage);
    focusOn(firstNew());
  } catch (failure) {
    showError(error, failure, {}, { retry: () => loadMore(button), focus: firstNew });
  }
}

$("#more").addEventListener("click", (event) => loadMore(event.currentTarget));

async function main() {
  $("#zone").textContent = ZONE ? `Times in your time zone (${ZONE})` : "Times in your time zone";
  fillActions();
  await loadUsers();
  filters = {
    user_id: params.get("user_id") || "",
    action: ACTIONS[params.get("action")] ? params.get("action") : "",
    since: /^\d{4}-\d{2}-\d{2}$/.test(params.get("since") || "") ? params.get("since") : "",
    until: /^\d{4}-\d{2}-\d{2}$/.test(params.get("until") || "") ? params.get("until") : "",
  };
  writeForm();
  if (fields.user_id.value !== filters.user_id) filters.user_id = ""; // not a user any more
  await reload();
  loaded();
}

main();
