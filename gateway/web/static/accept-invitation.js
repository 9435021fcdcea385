// Accept an invitation: the token comes in the URL fragment (never sent to a server in a URL
// or a Referer); the page drops it from the address bar and posts it with the chosen
// password. No session is opened: the new user logs in afterwards.
import { $, api, busy, hide, passwordRules, showError } from "/static/portal.js";

const form = $("#accept-form");
const error = $("#form-error");
const token = new URLSearchParams(window.location.hash.slice(1)).get("token") || "";
history.replaceState(null, "", window.location.pathname);

const rulesMet = passwordRules(form.new_password, $("#rules"));

if (!token) {
  $("#link-error").hidden = false;
  form.hidden = true;
} else {
  form.new_password.focus();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  hide(error);
  const password = form.new_password.value;
  if (!rulesMet()) {
    showError(error, "The password does not meet the rules yet.");
    form.new_password.focus();
    return;
  }
  if (password !== form.confirm_password.value) {
    showError(error, "The two passwords are not the same.");
    form.confirm_password.focus();
    return;
  }
  const button = form.querySelector("button[type=submit]");
  try {
    await busy(button, "Saving…", () =>
      api("/api/v1/invitations/accept", {
        method: "POST",
        body: { token, password },
        stayOn401: true,
      }),
    );
    form.hidden = true;
    $("#intro").hidden = true;
    const done = $("#done");
    done.hidden = false;
    done.focus();
  } catch (failure) {
    showError(error, failure, {
      invalid_token:
        "This invitation link has expired or was already used. Ask the person who invited you to send a new one.",
    });
  }
});
