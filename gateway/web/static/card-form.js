// The card fields of a form (inputs named number, expiry, cvc), shared by Buy or renew and
// the change-card form of a recurring payment: typing help, and the card the API takes.

/** Live formatting: "4242 4242 4242 4242" and "08 / 29" while typing; the API gets digits. */
export function cardInputs(form) {
  form.number.addEventListener("input", () => {
    const digits = form.number.value.replace(/\D/g, "").slice(0, 19);
    form.number.value = digits.replace(/(\d{4})(?=\d)/g, "$1 ");
  });
  form.expiry.addEventListener("input", (event) => {
    const digits = form.expiry.value.replace(/\D/g, "").slice(0, 4);
    if (event.inputType === "deleteContentBackward") return;
    form.expiry.value = digits.length > 2 ? `${digits.slice(0, 2)} / ${digits.slice(2)}` : digits;
  });
}

/** [card, null, null] for the API, or [null, problem, the input to fix]. */
export function readCard(form) {
  const number = form.number.value.replace(/\D/g, "");
  const [month, year] = form.expiry.value.split("/").map((part) => part.trim());
  const cvc = form.cvc.value.trim();
  if (number.length < 12) return [null, "Enter the full card number.", form.number];
  const expMonth = Number.parseInt(month, 10);
  let expYear = Number.parseInt(year, 10);
  if (!(expMonth >= 1 && expMonth <= 12) || !Number.isFinite(expYear)) {
    return [null, "Enter the expiry date as MM / YY, for example 08 / 29.", form.expiry];
  }
  if (expYear < 100) expYear += 2000;
  if (!/^\d{3,4}$/.test(cvc)) return [null, "Enter the 3 or 4 digit security code.", form.cvc];
  return [{ number, exp_month: expMonth, exp_year: expYear, cvc }, null, null];
}

/** Which input an API field problem (`card.number`, …) belongs to. */
export const CARD_FIELD_INPUTS = {
  "card.number": "number",
  "card.exp_month": "expiry",
  "card.exp_year": "expiry",
  "card.cvc": "cvc",
};
