// Accept an invitation: the token of the emailed link and the chosen password (the shared
// `tokenPasswordForm`). No session is opened: the new user logs in afterwards.
import { $, api, showError, tokenPasswordForm } from "/static/portal.js";

const error = $("#form-error");

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
  done: () => {
    $("#intro").hidden = true;
    const done = $("#done");
    done.hidden = false;
    done.focus();
  },
  failed: (failure) =>
    showError(error, failure, {
      invalid_token:
        "This invitation link has expired or was already used. Ask the person who invited you to send a new one.",
    }),
});
