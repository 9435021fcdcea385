"""Billing's application layer: what the entrypoints of `service.py` run.

One module per subject, importing one way (nothing here imports `service`):

- `plans`: prices of products, on sale or archived;
- `receipts`: receipt numbers, offline sales, the receipts a company (or staff) reads in
  pages, and the billing details receipts name as the buyer;
- `recurring`: recurring payments: listing, cancelling, resuming, changing the card;
- `licenses`: the license licensing issued for a receipt, learnt from its events;
- `cards`: a typed card, checked and tokenized (purchases and card changes);
- `settlement`: recording the provider's answer for a charge (a purchase or a renewal);
- `purchases`: buying by card (uses `settlement`);
- `renewals`: the renewal pass with its dunning (uses `settlement`);
- `refunds`: refunding a paid payment licensing could not apply;
- `demo`: the demo company's history.

Single-transaction use cases take a `BillingRepository`, plain data and `now`, and return an
`Outcome` or a view. A flow that calls the payment provider between transactions (a
purchase, a renewal pass, a refund, a card change) takes the `UnitOfWork` and runs each step
through it.
"""
