"""The licensing use cases: functions `(repo, ...plain data..., now) -> Outcome | view`.

`products` ← `licenses` ← `activations`, `payments`, `expiry`, `leases` (imports run that way
only).
The service runs each through `common.unit_of_work.UnitOfWork`, which commits the change
with its events; a use case never touches the session and never publishes. One takes the
unit of work itself: `activations.authorize`, whose attempt spans two transactions around
auth's password check (a lease's check-out runs through it too, with `leases.checkout` as
its step).
"""
