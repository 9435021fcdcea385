// Log in: customer ID or email + password → POST /web/session (the session lands in an
// HttpOnly cookie), then on to where the visitor wanted to go.
import { ApiError, $, api, busy, hide, messageFor, safeNext, showError } from "/static/portal.js";

const form = $("#login-form");
const error = $("#form-error");
const params = new URLSearchParams(window.location.search);
const notice = $("#notice");

if (params.get("signed_out")) {
  notice.textContent = "You are logged out. See you soon.";
  notice.hidden = false;
} else if (params.get("next")) {
  notice.textContent = "Please log in to continue.";
  notice.hidden = false;
}
if (params.get("login")) form.login.value = params.get("login");
(form.login.value ? form.password : form.login).focus();

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  hide(error);
  const login = form.login.value.trim();
  const password = form.password.value;
  if (!login || !password) {
    showError(error, !login ? "Enter your customer ID or email." : "Enter your password.");
    (!login ? form.login : form.password).focus();
    return;
  }
  const button = form.querySelector("button[type=submit]");
  try {
    await busy(button, "Logging in…", () =>
      api("/web/session", { method: "POST", body: { login, password }, stayOn401: true }),
    );
    window.location.assign(safeNext(params.get("next")) || "/licenses");
  } catch (failure) {
    showError(error, failure, {
      too_many_attempts: "Too many failed attempts for this login. For your security, logging in is paused.",
      validation_error: "Enter your customer ID or email and your password.",
    });
    if (failure instanceof ApiError && failure.code === "invalid_credentials") {
      form.password.value = "";
      form.password.focus();
    }
  }
});
