// Stripe's card form in place of ours, when the catalog's `payment.provider` is "stripe":
// Stripe.js (from `payment.js_url`) shows the card fields and turns the card into a
// PaymentMethod in the browser, so the card number never reaches the portal; the page
// sends its ID (`payment_method`). Shared by Buy or renew and the change-card dialog.

const scripts = new Map(); // js_url → the promise of its loading, so it loads once

function loadScript(url) {
  if (!scripts.has(url)) {
    scripts.set(url, new Promise((resolve, reject) => {
      // a classic script, as Stripe.js must be (it finds its own address through
      // document.currentScript); the page's CSP allows its origin
      const script = document.createElement("script");
      script.src = url;
      script.async = true;
      script.addEventListener("load", () => resolve());
      script.addEventListener("error", () => {
        scripts.delete(url);
        reject(new Error("Stripe.js did not load"));
      });
      document.head.append(script);
    }));
  }
  return scripts.get(url);
}

/** Whether the catalog's `payment` says to take cards with Stripe. */
export function usesStripe(payment) {
  return payment?.provider === "stripe" && Boolean(payment.js_url && payment.publishable_key);
}

export class StripeCard {
  /** Loads Stripe.js and mounts a card Element in `container` (rejects if it cannot). */
  static async mount(payment, container) {
    await loadScript(payment.js_url);
    if (typeof window.Stripe !== "function") throw new Error("Stripe.js did not load");
    const stripe = window.Stripe(payment.publishable_key);
    const element = stripe.elements().create("card");
    element.mount(container);
    return new StripeCard(stripe, element, container);
  }

  constructor(stripe, element, container) {
    this.stripe = stripe;
    this.element = element;
    this.container = container;
    // The PaymentMethod of the card as it is typed now: paying again without changing the
    // card is the same attempt (the same body, so the same Idempotency-Key), never a
    // second charge. Any change to the card makes a new one.
    this.method = null;
    element.on("change", () => {
      this.method = null;
    });
  }

  /** [paymentMethodId, null], or [null, a message for the customer]. */
  async paymentMethod() {
    if (this.method) return [this.method, null];
    let result;
    try {
      result = await this.stripe.createPaymentMethod({ type: "card", card: this.element });
    } catch (cause) {
      return [null, "The card could not be checked. Check your connection and try again."];
    }
    const id = result?.paymentMethod?.id;
    if (result?.error || !id) {
      return [null, result?.error?.message || "Check the card details and try again."];
    }
    this.method = id;
    return [id, null];
  }

  /** Lets the customer confirm the payment with their bank (3-D Secure) in Stripe's own
   * window. Resolves when that is over, whatever the outcome: billing, asked next, says. */
  async confirm(clientSecret) {
    try {
      await this.stripe.confirmCardPayment(clientSecret);
    } catch (cause) {
      // the confirmation route tells what happened
    }
  }

  focus() {
    if (typeof this.element.focus === "function") this.element.focus();
    else this.container.querySelector("input, iframe")?.focus();
  }

  /** Empty card fields (a new dialog). */
  clear() {
    this.method = null;
    if (typeof this.element.clear === "function") {
      this.element.clear();
    } else {
      this.element.unmount();
      this.element.mount(this.container);
    }
  }
}
