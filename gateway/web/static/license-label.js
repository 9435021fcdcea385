// A license's name (nickname) and note, edited in a dialog by an owner or a license admin:
// PATCH /api/v1/licenses/{id} {nickname, note} (empty clears it). The server trims and checks
// the lengths; its words for a refused field are shown beside that field.
import { $, ApiError, api, busy, fieldProblems, messageFor, newRequestKey } from "/static/portal.js";

const FIELDS = ["nickname", "note"];

/**
 * Wires the Edit button and the dialog. `current()` gives the license as shown now,
 * `saved(license)` receives the license the server answers.
 */
export function labelEditor({ base, current, saved }) {
  const button = $("#edit-label");
  const dialog = $("#label-dialog");
  if (!button || !dialog) return;
  const form = $("#label-form");
  const error = $("#label-error");
  // the same attempt sent again (after a lost answer) keeps its request key
  let attempt = { body: "", key: "" };

  function clearProblems() {
    error.hidden = true;
    error.textContent = "";
    for (const name of FIELDS) form.elements[name].removeAttribute("aria-invalid");
  }

  function open() {
    const license = current();
    form.nickname.value = license.nickname || "";
    form.note.value = license.note || "";
    clearProblems();
    dialog.showModal();
    form.nickname.focus();
  }

  function close() {
    dialog.close();
  }

  button.hidden = false;
  button.addEventListener("click", open);
  $("#label-cancel").addEventListener("click", close);
  dialog.addEventListener("close", () => button.focus());

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblems();
    const body = { nickname: form.nickname.value.trim(), note: form.note.value.trim() };
    const text = JSON.stringify(body);
    if (attempt.body !== text) attempt = { body: text, key: newRequestKey() };
    try {
      const license = await busy($("#label-save"), "Saving…", () =>
        api(base, { method: "PATCH", body, headers: { "Idempotency-Key": attempt.key } }));
      attempt = { body: "", key: "" };
      saved(license);
      close();
    } catch (failure) {
      const problems = failure instanceof ApiError && failure.code === "validation_error"
        ? fieldProblems(failure.details.fields || {})
        : [];
      let first = null;
      for (const [path] of problems) {
        const field = form.elements[path.split(".")[0]];
        if (!field) continue;
        field.setAttribute("aria-invalid", "true");
        first = first || field;
      }
      error.textContent = messageFor(failure, { forbidden: "Only an owner or a license admin can name a license." });
      error.hidden = false;
      (first || form.nickname).focus();
      // a refused attempt is never sent again as it was: the next one is new
      if (failure instanceof ApiError && failure.status && failure.status < 500) attempt = { body: "", key: "" };
    }
  });
}
