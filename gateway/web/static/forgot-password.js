// Forgot password: ask for a reset link. The answer is the same whether or not the login
// exists, so the page says the same either way.
import { $, api, busy, hide, showError } from "/static/portal.js";

const form = $("#forgot-form");
const error = $("#form-error");
form.login.focus();

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  hide(error);
  const login = form.login.value.trim();
  if (!login) {
    showError(error, "Enter your customer ID or email.");
    form.login.focus();
    return;
  }
  const button = form.querySelector("button[type=submit]");
  try {
    await busy(button, "Sending…", () =>
      api("/api/v1/password-resets", { method: "POST", body: { login }, stayOn401: true }),
    );
    $("#request").hidden = true;
    const sent = $("#sent");
    sent.hidden = false;
    sent.focus();
  } catch (failure) {
    showError(error, failure, { validation_error: "Enter a valid customer ID or email." });
  }
});
