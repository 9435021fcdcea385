// Reads the reset token from the URL fragment (never sent to any server in a URL or a
// Referer), then posts it with the new password to the API.
(function () {
  "use strict";
  var form = document.getElementById("reset-form");
  var message = document.getElementById("message");
  var token = new URLSearchParams(window.location.hash.slice(1)).get("token") || "";
  // drop the token from the address bar and history
  history.replaceState(null, "", window.location.pathname);

  function show(text, isError) {
    message.textContent = text;
    message.className = isError ? "error" : "";
  }

  if (!token) {
    show("This link is incomplete. Ask for a new reset link.", true);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var password = form.new_password.value;
    if (password.length < 10) {
      show("Use at least 10 characters.", true);
      return;
    }
    if (password !== form.confirm_password.value) {
      show("The two passwords differ.", true);
      return;
    }
    show("Saving…", false);
    fetch("/api/v1/password-resets/confirm", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: token, new_password: password }),
      credentials: "omit",
      referrerPolicy: "no-referrer"
    }).then(function (response) {
      if (response.status === 204) {
        form.hidden = true;
        document.getElementById("done").hidden = false;
        return;
      }
      return response.json().then(function (body) {
        show((body.error && body.error.message) || "Something went wrong.", true);
      });
    }).catch(function () {
      show("The portal cannot be reached. Try again in a moment.", true);
    });
  });
})();
