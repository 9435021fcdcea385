// Accept an invitation: the token of the emailed link is checked first, so a dead link says
// so before any typing; then the chosen password (the shared `tokenPasswordForm`). No
// session is opened: the new user logs in afterwards.
import { $, DEAD_LINK, api, h, showError, tokenPasswordForm } from "/static/portal.js";

const error = $("#form-error");

// what to do about a dead invitation: an accepted one logs in; another asks for a new one
const NEXT = {
  used: "It was accepted already: log in with your email address and password.",
  expired: "Ask the person who invited you to send a new invitation.",
  unknown: "Ask the person who invited you to send a new invitation.",
  incomplete: "Or ask the person who invited you to send a new invitation.",
};

tokenPasswordForm({
  form: $("#accept-form"),
  error,
  notMet: "The password does not meet the rules yet.",
  post: (token, password) =>
    api("/api/v1/invitations/accept", {
      method: "POST",
      body: { token, password },
      stayOn401: true,
    }),
  ready: (info) => {
    if (info?.email) {
      const company = info.company_name ? `${info.company_name}'s account` : "your company's account";
      $("#intro").textContent = `You were invited to ${company} in the License Portal as ` +
        `${info.email}. Choose a password to finish setting up your login.`;
    }
  },
  dead: (reason) => {
    $("#heading").textContent = reason === "used" ? "Invitation already accepted" : "This invitation does not work";
    $("#intro").hidden = true;
    $("#link-dead-text").textContent = DEAD_LINK[reason] || DEAD_LINK.unknown;
    $("#link-dead-next").textContent = NEXT[reason] || NEXT.unknown;
    const actions = reason === "used"
      ? [h("a", { class: "button", href: "/login", id: "dead-login" }, "Log in"), " ",
          h("a", { href: "/forgot-password", id: "new-link" }, "Forgot your password?")]
      : [h("a", { class: "button button-secondary", href: "/login" }, "Go to log in")];
    $("#link-dead-actions").replaceChildren(...actions);
    $("#link-dead").hidden = false;
    $("#link-dead-actions a")?.focus();
  },
  done: () => {
    $("#intro").hidden = true;
    const done = $("#done");
    done.hidden = false;
    done.focus();
  },
  failed: (failure) => showError(error, failure),
});
