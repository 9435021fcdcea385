// The machines of a node-locked license: active ones first (each holding a seat), the
// deactivated ones in a collapsed "Deactivated machines (N)" section; installation IDs
// shortened with a Copy button; when each was last seen; a search box over machine names
// and installation IDs; Deactivate (owners and license admins) after a confirmation that says
// what the machine's software does next.
import { $, api, busy, confirmDialog, formatDateTime, h, messageFor } from "/static/portal.js";
import { SOURCES, idWithCopy, lastSeenCell, matches } from "/static/license-cells.js";

// license-client's default (clients/python/README.md: `grace_period=timedelta(days=7)`)
const KIT_GRACE_DAYS = 7;

/** When and how a machine was deactivated: an offline proof says so in plain words. */
function deactivatedWords(item) {
  const when = formatDateTime(item.deactivated_at);
  if (item.deactivated_by === "offline") return `Deactivated offline ${when}`;
  return `${when}${item.deactivated_by ? ` by ${SOURCES[item.deactivated_by] || item.deactivated_by}` : ""}`;
}

/** What the search box looks in: the machine's name and installation ID. */
function machineText(item) {
  return `${item.machine_name || ""} ${item.installation_id}`;
}

/** Newest activity first: the last time seen (else activated), newest on top. */
function bySeen(a, b) {
  const time = (item) => new Date(item.last_seen_at || item.activated_at || 0).getTime();
  return time(b) - time(a);
}

/**
 * The machines panel. `licenseId` names the license in the dialog, `base` is its API path,
 * `admin` whether Deactivate is offered, `changed(installations)` is called after a
 * deactivation with the machines as now known (to reload them, the seats and the history);
 * its failure does not undo the deactivation.
 */
export function machines({ licenseId, base, admin, changed }) {
  const active = $("#installations");
  const gone = $("#deactivated-installations");
  const section = $("#deactivated-machines");
  const search = $("#machine-search");
  const copied = $("#copy-status");
  let all = [];

  function nameCell(item) {
    return h("td", { "data-label": "Machine" },
      h("strong", { class: "machine" }, item.machine_name || "—"));
  }

  function idCell(item) {
    return h("td", { "data-label": "Installation ID" },
      idWithCopy(item.installation_id, item.machine_name, copied));
  }

  function activeRow(item) {
    const action = admin
      ? h("button", {
          type: "button",
          class: "button button-danger-quiet button-small",
          onclick: (event) => deactivate(item, event.currentTarget),
        }, "Deactivate", h("span", { class: "visually-hidden" }, ` ${item.machine_name || item.installation_id}`))
      : "";
    return h("tr", { dataset: { installationId: item.installation_id, status: "active" } },
      nameCell(item), idCell(item),
      h("td", { "data-label": "Activated" }, formatDateTime(item.activated_at)),
      h("td", { "data-label": "Last seen" }, lastSeenCell(item.last_seen_at)),
      h("td", { class: "cell-action" }, action));
  }

  function deactivatedRow(item) {
    return h("tr", { dataset: { installationId: item.installation_id, status: "deactivated" } },
      nameCell(item), idCell(item),
      h("td", { "data-label": "Activated" }, formatDateTime(item.activated_at)),
      h("td", { "data-label": "Deactivated" }, deactivatedWords(item)),
      h("td", { "data-label": "Last seen" }, lastSeenCell(item.last_seen_at)));
  }

  function draw() {
    const query = search.value.trim();
    const activeAll = all.filter((item) => item.status === "active").sort(bySeen);
    const goneAll = all.filter((item) => item.status !== "active")
      .sort((a, b) => new Date(b.deactivated_at || 0) - new Date(a.deactivated_at || 0));
    const activeShown = activeAll.filter((item) => matches(machineText(item), query));
    const goneShown = goneAll.filter((item) => matches(machineText(item), query));

    $("#installations-count").textContent = `${activeAll.length} active · ${goneAll.length} deactivated`;
    $("#installations-empty").hidden = all.length > 0;
    $("#machine-search-field").hidden = all.length < 2;
    active.tBodies[0].replaceChildren(...activeShown.map(activeRow));
    active.hidden = activeShown.length === 0;
    $("#active-empty").hidden = !(all.length > 0 && activeAll.length === 0);

    gone.tBodies[0].replaceChildren(...goneShown.map(deactivatedRow));
    gone.hidden = goneShown.length === 0;
    section.hidden = goneAll.length === 0 || (query !== "" && goneShown.length === 0);
    $("#deactivated-count").textContent = query ? `${goneShown.length} of ${goneAll.length}` : String(goneAll.length);
    // a search that finds only deactivated machines shows them without another click
    if (query && goneShown.length && !activeShown.length) section.open = true;

    const shown = activeShown.length + goneShown.length;
    $("#machines-shown").textContent = query
      ? shown
        ? `${shown} of ${all.length} machines match “${query}”.`
        : `No machine matches “${query}”.`
      : "";
  }

  async function deactivate(item, button) {
    const name = item.machine_name || item.installation_id;
    const ok = await confirmDialog({
      title: `Deactivate “${name}”?`,
      text: `The seat of license ${licenseId} that ${name} holds is free at once. The software on ` +
        `${name} stops when it next checks the license online; if that machine is offline, it ` +
        "keeps working until its offline grace period ends (with license-client, " +
        `${KIT_GRACE_DAYS} days after it was last online, unless your software sets another ` +
        "period), then stops. The machine can be activated again later.",
      confirm: `Deactivate ${name}`,
      danger: true,
    });
    if (!ok) {
      button.focus();
      return;
    }
    const status = $("#installations-status");
    status.className = "status-line";
    let answer;
    try {
      answer = await busy(button, "Deactivating…", () =>
        api(`${base}/installations/${encodeURIComponent(item.installation_id)}/deactivate`, {
          method: "POST",
        }));
    } catch (failure) {
      status.textContent = messageFor(failure);
      status.classList.add("status-bad");
      return;
    }
    // the answer is the deactivated installation: the table is right at once, whatever the
    // reload below finds
    all = all.map((one) => (one.installation_id === item.installation_id ? { ...one, ...answer } : one));
    draw();
    status.textContent = `${name} is deactivated; its seat is free.`;
    status.classList.add("status-ok");
    try {
      await changed(all);
    } catch (failure) {
      // the deactivation stands; only the fresh list did not come
      status.append(" The list of machines could not be reloaded just now: reload the page to see the latest.");
    }
    // the button is gone with its row: the keyboard user goes on from the message
    status.focus();
  }

  search.addEventListener("input", draw);
  search.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && search.value) {
      event.preventDefault();
      search.value = "";
      draw();
    }
  });

  return {
    render(installations) {
      all = installations || [];
      draw();
    },
  };
}
