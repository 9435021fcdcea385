// Reset password: the token of the emailed link and the new password (the shared
// `tokenPasswordForm`).
import { $, api, showError, tokenPasswordForm } from "/static/portal.js";

const error = $("#form-error");

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
  done: () => {
    const done = $("#done");
    done.hidden = false;
    done.focus();
  },
  failed: (failure) => {
    showError(error, failure);
    if (failure.code === "invalid_token") {
      error.append(" ");
      const link = document.createElement("a");
      link.href = "/forgot-password";
      link.textContent = "Ask for a new link";
      error.append(link);
    }
  },
});
