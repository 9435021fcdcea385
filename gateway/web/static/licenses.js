// Licenses & Activations: every license of the company, named by its nickname (else its
// product), with its status, its renewal ("Renews Dec 7, 2026 · €245.00", "Auto-renew off"),
// seats and expiry; filtered by status and product, searched by name, note or ID, sorted by
// expiry or name (kept in the address, so a reload or a shared link shows the same). A row
// opens the license.
import { $, BILLING_USERS, api, badge, h, loaded, may, showError } from "/static/portal.js";
import {
  expiryCell, featureNames, licenseName, matches, productName, renewable, renewalCell, seatsCell,
  sizeMeters,
} from "/static/license-cells.js";

const table = $("#licenses");
const form = $("#license-filters");
const FILTERS = ["q", "status", "product", "sort"];
let licenses = [];
let catalog = null; // the plans on sale, for the Renew links (billing roles only)

// the modules a license unlocks, under its product; nothing when it has none
function modulesLine(license) {
  const names = featureNames(license);
  return names ? h("span", { class: "small muted block modules" }, `Modules: ${names}`) : "";
}

function nameCell(license, href) {
  const product = productName(license);
  const named = Boolean(license.nickname);
  // one wrapper: on a phone the cell is a two-column grid (its label, then its content)
  return h("td", { "data-label": "License" }, h("div", {},
    h("a", { href, class: "strong license-name" }, licenseName(license)),
    h("span", { class: "small muted block license-sub" },
      named ? `${product} · ` : "", h("span", { class: "mono license-id" }, license.license_id)),
    license.note ? h("span", { class: "small block license-note" }, license.note) : "",
    modulesLine(license)));
}

function statusCell(license) {
  const parts = [badge(license.status)];
  if (license.status === "suspended") {
    const reason = license.suspension_reason ||
      (license.suspension_cause === "payment_disputed" ? "A payment for it is disputed." : "");
    if (reason) parts.push(h("span", { class: "small muted block suspension-reason" }, reason));
  }
  return h("td", { "data-label": "Status" }, h("div", {}, parts));
}

function renewalTd(license, href) {
  const cell = h("td", { "data-label": "Renewal" }, renewalCell(license, catalog));
  // an expired license: the way back, when a plan of its product is on sale (and the role
  // may buy: only those roles have the catalog)
  if (license.status === "expired" && may(BILLING_USERS) && renewable(license, catalog)) {
    cell.replaceChildren(h("a", {
      href: `/buy?license=${encodeURIComponent(license.license_id)}`,
      class: "renew-link",
    }, "Renew to reactivate", h("span", { class: "visually-hidden" }, ` ${licenseName(license)} ${license.license_id}`)));
  }
  return cell;
}

function row(license) {
  const href = `/licenses/${encodeURIComponent(license.license_id)}`;
  const tr = h("tr", { class: "clickable", dataset: { href, licenseId: license.license_id, status: license.status } },
    nameCell(license, href),
    statusCell(license),
    renewalTd(license, href),
    h("td", { "data-label": "Seats in use" }, seatsCell(license)),
    h("td", { "data-label": "Expires" }, expiryCell(license)));
  tr.addEventListener("click", (event) => {
    if (event.target.closest("a, button")) return;
    window.location.assign(href);
  });
  return tr;
}

// --- filter, search, sort ------------------------------------------------------------------

function chosenBy(license, { q, status, product }) {
  if (status && license.status !== status) return false;
  if (product && license.product?.code !== product) return false;
  return matches([license.nickname, license.note, productName(license), license.license_id,
    featureNames(license)].join(" "), q);
}

function expiryTime(license) {
  // perpetual licenses last
  return license.expires_at ? new Date(license.expires_at).getTime() : Number.POSITIVE_INFINITY;
}

function byName(a, b) {
  return licenseName(a).localeCompare(licenseName(b), undefined, { sensitivity: "base" }) ||
    a.license_id.localeCompare(b.license_id);
}

const SORTS = {
  expiry: (a, b) => expiryTime(a) - expiryTime(b) || byName(a, b),
  "expiry-desc": (a, b) => {
    // latest first, perpetual still last
    const [x, y] = [expiryTime(a), expiryTime(b)];
    if (x === y) return byName(a, b);
    if (x === Number.POSITIVE_INFINITY) return 1;
    if (y === Number.POSITIVE_INFINITY) return -1;
    return y - x;
  },
  name: byName,
};

function chosen() {
  return {
    q: form.q.value.trim(),
    status: form.status.value,
    product: form.product.value,
    sort: SORTS[form.sort.value] ? form.sort.value : "expiry",
  };
}

function remember(choice) {
  const query = new URLSearchParams();
  for (const name of FILTERS) {
    if (choice[name] && !(name === "sort" && choice[name] === "expiry")) query.set(name, choice[name]);
  }
  const search = query.toString();
  history.replaceState(null, "", window.location.pathname + (search ? `?${search}` : ""));
}

function render() {
  const choice = chosen();
  remember(choice);
  const shown = licenses.filter((license) => chosenBy(license, choice)).sort(SORTS[choice.sort]);
  const body = table.tBodies[0];
  body.replaceChildren(...shown.map(row));
  sizeMeters(body);
  table.hidden = shown.length === 0;
  $("#no-match").hidden = shown.length > 0;
  const filtered = choice.q || choice.status || choice.product;
  const noun = licenses.length === 1 ? "license" : "licenses";
  $("#licenses-count").textContent = filtered
    ? `Showing ${shown.length} of ${licenses.length} ${noun}.`
    : `${licenses.length} ${noun}.`;
}

function fillProducts() {
  const products = new Map();
  for (const license of licenses) {
    if (license.product?.code) products.set(license.product.code, productName(license));
  }
  const select = form.product;
  for (const [code, name] of [...products].sort((a, b) => a[1].localeCompare(b[1]))) {
    select.append(h("option", { value: code }, name));
  }
  // one product: the filter has nothing to choose
  select.closest(".field").hidden = products.size < 2;
}

function restore() {
  const query = new URLSearchParams(window.location.search);
  for (const name of FILTERS) {
    const value = query.get(name);
    if (value === null) continue;
    const field = form.elements[name];
    if (field.tagName === "SELECT" && ![...field.options].some((option) => option.value === value)) continue;
    field.value = value;
  }
}

async function loadCatalog() {
  if (!may(BILLING_USERS)) return null;
  try {
    return await api("/api/v1/catalog");
  } catch (failure) {
    return null; // no Renew links then; the list itself does not depend on billing
  }
}

async function main() {
  try {
    const [list, plans] = await Promise.all([api("/api/v1/licenses"), loadCatalog()]);
    licenses = list.licenses;
    catalog = plans;
    loaded($("#licenses-panel"));
    if (!licenses.length) {
      $("#empty").hidden = false;
      return;
    }
    fillProducts();
    restore();
    form.hidden = false;
    render();
    form.addEventListener("input", render);
    form.addEventListener("change", render);
    form.addEventListener("submit", (event) => event.preventDefault());
    $("#clear-filters").addEventListener("click", () => {
      form.q.value = "";
      form.status.value = "";
      form.product.value = "";
      render();
      form.q.focus();
    });
  } catch (failure) {
    loaded($("#licenses-panel"));
    showError($("#error"), failure);
  }
}

main();
