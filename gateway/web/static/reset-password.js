// Reset password, or set the first one (a new company's welcome link): the token of the
// emailed link is checked first, so a dead link says so before any typing; then the new
// password (the shared `tokenPasswordForm`).
import { $, DEAD_LINK, api, showError, tokenPasswordForm } from "/static/portal.js";

const error = $("#form-error");
// a new company's welcome link sets the first password: nothing to sign out yet
let purpose = "reset";

tokenPasswordForm({
  form: $("#reset-form"),
  error,
  notMet: "The new password does not meet the rules yet.",
  post: (token, password) =>
    api("/api/v1/password-resets/confirm", {
      method: "POST",
      body: { token, new_password: password },
      stayOn401: true,
    }),
  ready: (info) => {
    purpose = info?.purpose || "reset";
    const setup = purpose !== "reset";
    const heading = setup ? "Set your password" : "Choose a new password";
    $("#heading").textContent = heading;
    document.title = `${heading} · License Portal`;
    const intro = $("#intro");
    if (info?.email) {
      const company = info.company_name ? ` (${info.company_name})` : "";
      intro.textContent = setup
        ? `Welcome to the License Portal. Choose the password for ${info.email}${company}.`
        : `For ${info.email}${company}. Once it is set, every session of this login is signed out.`;
      intro.hidden = false;
    }
    $("#reset-form button[type=submit]").textContent = setup ? "Set password" : "Change password";
    if (setup) {
      // a first password: nothing "new" about it
      $("label[for=new-password]").textContent = "Password";
      $("label[for=confirm-password]").textContent = "Repeat the password";
    }
  },
  dead: (reason) => {
    $("#heading").textContent = reason === "incomplete" ? "Link incomplete" : "This link does not work";
    $("#intro").hidden = true;
    $("#link-dead-text").textContent = DEAD_LINK[reason] || DEAD_LINK.unknown;
    const dead = $("#link-dead");
    dead.hidden = false;
    $("#new-link").focus();
  },
  done: () => {
    $("#done-sessions").hidden = purpose !== "reset";
    $("#intro").hidden = true;
    const done = $("#done");
    done.hidden = false;
    done.focus();
  },
  failed: (failure) => showError(error, failure),
});
