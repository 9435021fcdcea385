// Licenses & Activations: every license of the company with its modules; a row opens its details.
import { $, api, badge, h, loaded, showError } from "/static/portal.js";
import { expiryCell, featureNames, seatsCell, sizeMeters } from "/static/license-cells.js";

// the modules a license unlocks, under its product; nothing when it has none
function modulesLine(license) {
  const names = featureNames(license);
  return names ? h("span", { class: "small muted block modules" }, `Modules: ${names}`) : "";
}

async function main() {
  const table = $("#licenses");
  try {
    const { licenses } = await api("/api/v1/licenses");
    loaded($("#licenses-panel"));
    if (!licenses.length) {
      $("#empty").hidden = false;
      return;
    }
    const body = table.tBodies[0];
    for (const license of licenses) {
      const href = `/licenses/${encodeURIComponent(license.license_id)}`;
      const row = h("tr", { class: "clickable", dataset: { href } },
        h("td", { "data-label": "License ID" },
          h("a", { href, class: "mono strong" }, license.license_id)),
        h("td", { "data-label": "Product" }, license.product?.name || license.product?.code || "—",
          modulesLine(license)),
        h("td", { "data-label": "Seats in use" }, seatsCell(license)),
        h("td", { "data-label": "Expires" }, expiryCell(license)),
        h("td", { "data-label": "Status" }, badge(license.status),
          license.status === "suspended" && license.suspension_reason
            ? h("span", { class: "small muted block suspension-reason" }, license.suspension_reason)
            : ""));
      row.addEventListener("click", (event) => {
        if (event.target.closest("a, button")) return;
        window.location.assign(href);
      });
      body.append(row);
    }
    sizeMeters(body);
    table.hidden = false;
  } catch (failure) {
    loaded($("#licenses-panel"));
    showError($("#error"), failure);
  }
}

main();
