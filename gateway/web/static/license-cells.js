// How a license's expiry and seats look, shared by the list and the details page.
import { date, h } from "/static/portal.js";

const SOON_DAYS = 30;

/** Whole calendar days (UTC) from today to the day the license is valid through. */
export function daysLeft(iso) {
  const day = (value) => Math.floor(new Date(value).getTime() / 86400000);
  return day(iso) - day(Date.now());
}

/** The expiry cell: the date, marked when it has passed or is near. */
export function expiryCell(license) {
  if (!license.expires_at) return h("span", { class: "muted" }, "Never (perpetual)");
  const past = license.status === "expired" || new Date(license.expires_at).getTime() <= Date.now();
  if (past) {
    return h("span", { class: "expiry expiry-past" }, date(license.expires_at),
      h("span", { class: "visually-hidden" }, " (expired)"));
  }
  const days = daysLeft(license.expires_at);
  if (days <= SOON_DAYS) {
    const words = days <= 0 ? "Expires today" : days === 1 ? "Expires tomorrow" : `Expires in ${days} days`;
    return h("span", { class: "expiry expiry-soon" }, date(license.expires_at), " ",
      h("span", { class: "badge badge-warn" }, words));
  }
  return h("span", { class: "expiry" }, date(license.expires_at));
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
