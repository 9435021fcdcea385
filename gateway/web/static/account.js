// Account: change the company password (the server checks the rules again).
import { $, busy, api, hide, passwordRules, showError } from "/static/portal.js";

const main = document.querySelector("main");
const form = $("#password-form");
const error = $("#form-error");
const done = $("#form-done");
const rulesMet = passwordRules(form.new_password, $("#rules"), {
  customerId: main.dataset.customerId,
  email: main.dataset.email,
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  hide(error);
  hide(done);
  if (!form.current_password.value) {
    showError(error, "Enter your current password.");
    form.current_password.focus();
    return;
  }
  if (!rulesMet()) {
    showError(error, "The new password does not meet the rules yet.");
    form.new_password.focus();
    return;
  }
  if (form.new_password.value !== form.confirm_password.value) {
    showError(error, "The two new passwords are not the same.");
    form.confirm_password.focus();
    return;
  }
  const button = form.querySelector("button[type=submit]");
  try {
    await busy(button, "Changing…", () =>
      api("/api/v1/account/password", {
        method: "PUT",
        body: {
          current_password: form.current_password.value,
          new_password: form.new_password.value,
        },
      }));
    form.reset();
    form.new_password.dispatchEvent(new Event("input"));
    done.textContent = "Your password is changed. Every other session was signed out.";
    done.hidden = false;
    done.focus();
  } catch (failure) {
    showError(error, failure, {
      invalid_credentials: "The current password is not correct.",
      too_many_attempts: "Too many wrong current passwords.",
    });
    if (failure.code === "invalid_credentials") form.current_password.focus();
  }
});
