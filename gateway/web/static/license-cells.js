// How a license looks, shared by the list and the details page: its name, expiry, renewal,
// seats; and the small pieces of the machines table (short IDs with a Copy button, "last
// seen" times, who deactivated a machine); the word search of the list and the machines.
// Dates and money come from portal.js's one formatting.
import { BILLING_USERS, USER_LOCALE, formatDate, formatDateTime, formatMoney, h, may } from "/static/portal.js";

const SOON_DAYS = 30;

/** Where an activation or a deactivation came from, as a sentence names it. */
export const SOURCES = {
  portal: "the portal", product: "the product", staff: "support staff", offline: "offline file",
};

/** Text for a search: lower case, accents dropped ("Büro" finds "buro"). */
export function normal(text) {
  return String(text || "").toLocaleLowerCase().normalize("NFKD").replace(/[\u0300-\u036f]/g, "");
}

/** Whether `text` holds every word of `query`, case and accents aside (an empty query: yes). */
export function matches(text, query) {
  const haystack = normal(text);
  return normal(query).split(/\s+/).filter(Boolean).every((word) => haystack.includes(word));
}

/** Whole calendar days (UTC) from today to the day the license is valid through. */
export function daysLeft(iso) {
  const day = (value) => Math.floor(new Date(value).getTime() / 86400000);
  return day(iso) - day(Date.now());
}

/** What the company calls the license: its nickname, else its product's name. */
export function licenseName(license) {
  return license.nickname || license.product?.name || license.product?.code || license.license_id;
}

/** The product's name (its code when licensing gave no name) of a license, a recurring
 * payment or a plan: anything with a `product`; "" without one. */
export function productName(item) {
  return item?.product?.name || item?.product?.code || "";
}

/** Whether the license renews by itself: an active automatic payment is due before expiry. */
export function renewsAutomatically(license) {
  return license.renewal?.status === "automatic" && license.status === "active";
}

/** The expiry cell: the date, marked when it has passed or is near (and will not renew). */
export function expiryCell(license) {
  if (!license.expires_at) return h("span", { class: "muted" }, "Never (perpetual)");
  const past = license.status === "expired" || new Date(license.expires_at).getTime() <= Date.now();
  if (past) {
    return h("span", { class: "expiry expiry-past" }, formatDate(license.expires_at),
      h("span", { class: "visually-hidden" }, " (expired)"));
  }
  // a suspended license does not count down (it cannot be used anyway), and one that renews
  // automatically is not about to end: no amber warning for either
  if (license.status === "suspended" || renewsAutomatically(license)) {
    return h("span", { class: "expiry" }, formatDate(license.expires_at));
  }
  const days = daysLeft(license.expires_at);
  if (days <= SOON_DAYS) {
    const words = days <= 0 ? "Expires today" : days === 1 ? "Expires tomorrow" : `Expires in ${days} days`;
    return h("span", { class: "expiry expiry-soon" }, formatDate(license.expires_at), " ",
      h("span", { class: "badge badge-warn" }, words));
  }
  return h("span", { class: "expiry" }, formatDate(license.expires_at));
}

// the plan's interval in words (the plan's code is for machines, never shown)
const INTERVAL_WORDS = { year: "Yearly", month: "Monthly" };

/**
 * The renewal of a license in a few words, for the list: `{text, tone, key}`; tone "ok",
 * "warn", "bad" or "neutral"; null for an active license when `renewal` is undefined (an
 * older gateway). `catalog` is the plans on sale (null: not known).
 *   automatic → "Renews Dec 7, 2026 · Yearly · €245.00" (no interval from an older gateway,
 *               no amount for roles that may not see it)
 *   cancelled → "Auto-renew off · ends Dec 7, 2026"
 *   past_due  → "Payment failing · Yearly · €245.00"
 *   none      → "No automatic renewal"
 * An expired license: "Renew to reactivate" when a plan of its product is on sale and the
 * role may buy, else why not; a suspended one: "Not renewed while suspended".
 */
export function renewalSummary(license, catalog = null) {
  if (license.status === "suspended") {
    return { key: "suspended", text: "Not renewed while suspended", tone: "neutral" };
  }
  if (license.status === "expired") {
    let text;
    if (!may(BILLING_USERS)) text = "Expired · an owner or billing user can renew";
    else if (renewable(license, catalog)) text = "Renew to reactivate";
    else if (catalog) text = "Expired · no plan on sale";
    else text = "Expired · plans cannot be loaded right now";
    return { key: "expired", text, tone: "bad" };
  }
  if (license.renewal === undefined) return null;
  const renewal = license.renewal;
  if (!renewal) return { key: "unknown", text: "Renewal unknown right now", tone: "neutral" };
  const plan = [
    INTERVAL_WORDS[renewal.interval],
    renewal.amount != null && renewal.currency ? formatMoney(renewal.amount, renewal.currency) : "",
  ].filter(Boolean).map((part) => ` · ${part}`).join("");
  switch (renewal.status) {
    case "automatic":
      return { key: "automatic", text: `Renews ${formatDate(renewal.next_charge_at || license.expires_at)}${plan}`, tone: "ok" };
    case "past_due":
      return { key: "past_due", text: `Payment failing${plan}`, tone: "bad" };
    case "cancelled":
      return {
        key: "cancelled",
        text: license.expires_at ? `Auto-renew off · ends ${formatDate(license.expires_at)}` : "Auto-renew off",
        tone: "warn",
      };
    default:
      if (!license.expires_at) return { key: "perpetual", text: "Perpetual: no renewal needed", tone: "neutral" };
      return { key: "none", text: "No automatic renewal", tone: "neutral" };
  }
}

export function renewalCell(license, catalog = null) {
  const summary = renewalSummary(license, catalog);
  if (!summary) return h("span", { class: "muted" }, "—");
  return h("span", { class: `renewal renewal-${summary.tone}`, dataset: { renewal: summary.key } },
    summary.text);
}

/** "3 of 10 in use": the seats of a license in words (a floating one counts live leases). */
export function seatsWords(license) {
  return `${license.seats_in_use ?? 0} of ${license.seats}${isFloating(license) ? " in use" : ""}`;
}

/** Whether the license is floating (leases, design §13) rather than node-locked. */
export function isFloating(license) {
  return license.model === "floating";
}

export function seatsCell(license) {
  const used = license.seats_in_use ?? 0;
  const ratio = license.seats ? Math.min(1, used / license.seats) : 0;
  // a floating license's seats are running copies, not machines: the list says so
  const text = isFloating(license) ? `floating, ${seatsWords(license)}` : `${used} / ${license.seats}`;
  return h("span", { class: "seats" },
    h("span", { class: "seats-text" }, text),
    h("span", { class: "meter", "aria-hidden": "true" },
      h("span", { class: ratio >= 1 ? "meter-fill full" : "meter-fill", dataset: { ratio } })));
}

export function sizeMeters(root) {
  // CSP forbids inline style attributes set from markup, but not CSSOM from a script
  for (const fill of root.querySelectorAll(".meter-fill")) {
    fill.style.width = `${Math.round(Number(fill.dataset.ratio) * 100)}%`;
  }
}

/** The names of the license's modules (features), "Steel design, Dynamic analysis", or "". */
export function featureNames(license) {
  return (license.features || []).map((feature) => feature.name || feature.code).join(", ");
}

/**
 * Whether the company can renew the license from the catalog: a plan of its product (and
 * of its licensing model, which billing insists on) is on sale. Never for a suspended one.
 */
export function renewable(license, catalog) {
  if (!catalog || license.status === "suspended") return false;
  const code = String(license.product?.code || "").toLowerCase();
  const model = license.model || "node_locked";
  return (catalog.products || []).some((product) =>
    String(product.code).toLowerCase() === code &&
    (product.plans || []).some((plan) => (plan.model || "node_locked") === model));
}

// --- machines -------------------------------------------------------------------------------

/** "a1b2c3…9f0e" for a long installation ID (its first 6 and last 4 characters: IDs made
 * from a host name often share their start), the ID itself if short. */
export function shortId(id) {
  const text = String(id ?? "");
  return text.length > 11 ? `${text.slice(0, 6)}…${text.slice(-4)}` : text;
}

/** "just now", "5 minutes ago", "3 days ago"; a date beyond a month. */
export function relativeTime(iso, now = Date.now()) {
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  if (Number.isNaN(seconds)) return "—";
  const ago = Math.abs(seconds);
  if (ago < 60) return "just now";
  const words = new Intl.RelativeTimeFormat(USER_LOCALE, { numeric: "auto" });
  if (ago < 3600) return words.format(Math.round(seconds / 60), "minute");
  if (ago < 86400) return words.format(Math.round(seconds / 3600), "hour");
  if (ago < 30 * 86400) return words.format(Math.round(seconds / 86400), "day");
  return formatDate(iso);
}

/** "Last seen" as a <time>: relative words, the exact moment in its title; "never" if null. */
export function lastSeenCell(iso) {
  if (!iso) return h("span", { class: "muted last-seen" }, "never");
  const exact = formatDateTime(iso);
  return h("time", { class: "last-seen", datetime: iso, title: exact }, relativeTime(iso),
    h("span", { class: "visually-hidden" }, ` (${exact})`));
}

/**
 * The installation ID shortened (full in its title) with a Copy button that copies the whole
 * ID and says "Copied" in `live` (an aria-live region) and on the button for a moment.
 */
export function idWithCopy(id, machine, live) {
  const button = h("button", {
    type: "button",
    class: "button button-quiet button-small copy-id",
    dataset: { copy: id },
  }, h("span", { class: "copy-label" }, "Copy"),
  h("span", { class: "visually-hidden" }, ` the installation ID of ${machine || id}`));
  button.addEventListener("click", () => copyId(id, machine, button, live));
  return h("span", { class: "id-copy" },
    h("code", { class: "id-short", title: id }, shortId(id)), button);
}

async function copyId(id, machine, button, live) {
  const label = button.querySelector(".copy-label");
  try {
    await navigator.clipboard.writeText(id);
  } catch (cause) {
    // no clipboard (plain HTTP on another host): show the whole ID, selected, to copy by hand
    live.textContent = `Press Ctrl+C (or ⌘C) to copy the installation ID of ${machine || id}: `;
    const full = h("code", { class: "id-wrap" }, id);
    live.append(full);
    const range = document.createRange();
    range.selectNodeContents(full);
    window.getSelection().removeAllRanges();
    window.getSelection().addRange(range);
    return;
  }
  live.textContent = `Copied the installation ID of ${machine || id}.`;
  label.textContent = "Copied";
  window.clearTimeout(button._copied);
  button._copied = window.setTimeout(() => { label.textContent = "Copy"; }, 2000);
}
