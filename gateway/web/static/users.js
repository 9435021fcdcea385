// Users (owners only): the company's users with their role, status and last login; invite
// one; per user change the role, disable or enable, remove, or resend an invitation. The
// company's contact is always an owner: it has no role choice and no destructive action.
import {
  $, ApiError, ROLE_LABELS, api, badge, busy, confirmDialog, fieldProblems, formatDate,
  formatDateTime, h, hide, loaded, messageFor, showError,
} from "/static/portal.js";

const me = document.querySelector("main").dataset.userId || "";
const table = $("#users");
const status = $("#users-status");
const inviteForm = $("#invite-form");
const inviteError = $("#invite-error");
const inviteDone = $("#invite-done");
const FIELD_LABELS = { email: "Email", name: "Name", role: "Role" };
const base = (user) => `/api/v1/users/${encodeURIComponent(user.user_id)}`;

let users = [];

function say(text, ok = true) {
  status.className = `status-line ${ok ? "status-ok" : "status-bad"}`;
  status.textContent = text;
}

function nameOf(user) {
  return user.name || user.email;
}

function roleCell(user) {
  if (user.contact) {
    return h("div", {}, ROLE_LABELS.owner,
      h("span", { class: "user-note contact-note" }, "Contact, always owner"));
  }
  const select = h("select", {
    class: "select-small role-select",
    "aria-label": `Role of ${nameOf(user)}`,
    onchange: (event) => changeRole(user, event.currentTarget),
  });
  for (const [value, label] of Object.entries(ROLE_LABELS)) {
    select.append(h("option", { value, selected: value === user.role }, label));
  }
  return select;
}

function statusCell(user) {
  if (user.status !== "invited") return badge(user.status);
  return h("div", {}, badge("invited"), user.invitation_expires_at
    ? h("span", { class: "user-note" }, `Link valid until ${formatDate(user.invitation_expires_at)}`)
    : h("span", { class: "user-note" }, "The link has expired: resend it"));
}

function actionButton(label, action, user, { danger = false } = {}) {
  return h("button", {
    type: "button",
    class: `button ${danger ? "button-danger-quiet" : "button-secondary"} button-small`,
    dataset: { action },
    onclick: (event) => act(action, user, event.currentTarget),
  }, label, h("span", { class: "visually-hidden" }, ` ${nameOf(user)}`));
}

function actions(user) {
  if (user.contact) return "";
  const buttons = [];
  if (user.status === "invited") buttons.push(actionButton("Resend invitation", "resend", user));
  if (user.status === "active") buttons.push(actionButton("Disable", "disable", user));
  if (user.status === "disabled") buttons.push(actionButton("Enable", "enable", user));
  buttons.push(actionButton(user.status === "invited" ? "Revoke invitation" : "Remove", "remove", user,
    { danger: true }));
  return h("div", { class: "row-actions" }, buttons);
}

function row(user) {
  const you = user.user_id === me ? h("span", { class: "muted" }, " (you)") : "";
  return h("tr", { dataset: { userId: user.user_id, email: user.email } },
    h("td", { "data-label": "User" }, h("div", {},
      h("strong", {}, user.name || user.email), you,
      user.name ? h("span", { class: "user-note actor-email" }, user.email) : "")),
    h("td", { "data-label": "Role" }, roleCell(user)),
    h("td", { "data-label": "Status" }, statusCell(user)),
    h("td", { "data-label": "Last login" }, user.last_login_at ? formatDateTime(user.last_login_at) : "Never"),
    h("td", { class: "cell-action" }, actions(user)));
}

function render() {
  table.tBodies[0].replaceChildren(...users.map(row));
  table.hidden = users.length === 0;
}

async function load() {
  const page = await api("/api/v1/users");
  users = page.users || [];
  render();
}

function replace(updated) {
  users = users.map((user) => (user.user_id === updated.user_id ? updated : user));
  render();
}

/** Puts the focus back on the row's control of `action` after the table was redrawn. */
function refocus(user, selector) {
  table.querySelector(`tr[data-user-id="${CSS.escape(user.user_id)}"] ${selector}`)?.focus();
}

async function changeRole(user, select) {
  const role = select.value;
  select.disabled = true;
  try {
    const updated = await api(base(user), { method: "PATCH", body: { role } });
    replace(updated);
    say(`${nameOf(user)} is now ${ROLE_LABELS[updated.role] || updated.role}.`);
    refocus(user, ".role-select");
  } catch (failure) {
    select.value = user.role; // the change did not happen
    select.disabled = false;
    say(messageFor(failure, {
      last_owner: `${nameOf(user)} is the last active owner: make another user an owner first.`,
    }), false);
  }
}

const CONFIRM = {
  disable: (user) => ({
    title: `Disable ${nameOf(user)}?`,
    text: `${user.email} is logged out at once and cannot log in until you enable them again.`,
    confirm: "Disable",
    danger: true,
  }),
  remove: (user) => user.status === "invited"
    ? {
        title: `Revoke the invitation of ${nameOf(user)}?`,
        text: `The invitation link sent to ${user.email} stops working.`,
        confirm: "Revoke invitation",
        danger: true,
      }
    : {
        title: `Remove ${nameOf(user)}?`,
        text: `${user.email} is logged out at once and can no longer log in. The activity log keeps what they did.`,
        confirm: `Remove ${nameOf(user)}`,
        danger: true,
      },
};

const DONE = {
  resend: (user) => `A new invitation was sent to ${user.email}; the earlier link no longer works.`,
  disable: (user) => `${nameOf(user)} is disabled and was logged out.`,
  enable: (user) => `${nameOf(user)} can log in again.`,
  remove: (user) => user.status === "invited"
    ? `The invitation of ${user.email} is revoked.`
    : `${nameOf(user)} is removed.`,
};

async function act(action, user, button) {
  if (CONFIRM[action]) {
    const ok = await confirmDialog(CONFIRM[action](user));
    if (!ok) {
      button.focus();
      return;
    }
  }
  const request = {
    resend: () => api(`${base(user)}/invitation`, { method: "POST" }),
    disable: () => api(`${base(user)}/disable`, { method: "POST" }),
    enable: () => api(`${base(user)}/enable`, { method: "POST" }),
    remove: () => api(base(user), { method: "DELETE" }),
  }[action];
  try {
    const updated = await busy(button, "Working…", request);
    if (action === "remove") {
      users = users.filter((item) => item.user_id !== user.user_id);
      render();
      $("#users-title").focus();
    } else {
      replace(updated);
      refocus(user, ".row-actions button");
    }
    say(DONE[action](user));
  } catch (failure) {
    say(messageFor(failure, {
      last_owner: action === "remove"
        ? `${nameOf(user)} is the last active owner: make another user an owner before removing them.`
        : `${nameOf(user)} is the last active owner: make another user an owner first.`,
    }), false);
    if (failure instanceof ApiError && failure.code === "user_not_found") load().catch(() => {});
  }
}

inviteForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  hide(inviteError);
  hide(inviteDone);
  for (const input of inviteForm.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const body = {
    email: inviteForm.email.value.trim(),
    name: inviteForm.name.value.trim(),
    role: inviteForm.role.value,
  };
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(body.email)) {
    inviteForm.email.setAttribute("aria-invalid", "true");
    inviteForm.email.focus();
    showError(inviteError, "Enter the email address of the person to invite.");
    return;
  }
  if (!body.name) {
    inviteForm.name.setAttribute("aria-invalid", "true");
    inviteForm.name.focus();
    showError(inviteError, "Enter their name.");
    return;
  }
  try {
    const user = await busy($("#invite-send"), "Sending…", () =>
      api("/api/v1/users", { method: "POST", body }));
    inviteForm.reset();
    // the list in the server's order (the contact first, then by email)
    await load().catch(() => {
      users = users.concat([user]);
      render();
    });
    inviteDone.textContent = `Invitation sent to ${user.email} as ${ROLE_LABELS[user.role] || user.role}. ` +
      "They appear as invited until they set their password.";
    inviteDone.hidden = false;
    inviteDone.focus();
  } catch (failure) {
    if (failure instanceof ApiError && failure.code === "validation_error") {
      const problems = fieldProblems(failure.details.fields);
      for (const [path] of problems) inviteForm[path]?.setAttribute?.("aria-invalid", "true");
      if (problems.length) {
        showError(inviteError, problems.map(([path, text]) => `${FIELD_LABELS[path] || path}: ${text}`).join(" "));
        return;
      }
    }
    showError(inviteError, failure, {
      email_taken: "This email address already belongs to a user of the portal, in your account or another. Use another address.",
    });
    if (failure instanceof ApiError && failure.code === "email_taken") {
      inviteForm.email.setAttribute("aria-invalid", "true");
      inviteForm.email.focus();
    }
  }
});

async function main() {
  try {
    await load();
  } catch (failure) {
    showError($("#error"), failure);
  } finally {
    loaded();
  }
}

main();
