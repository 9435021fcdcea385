"""The HTTP gateway: the JSON API under /api/v1 and the portal's pages.

Each route group lives in `gateway/routes/`; this class only puts them together, so that
nameko runs them as one service with one RPC client per target service. The groups are
imported as modules: `nameko run gateway.service` treats every class in this module's
namespace that has entrypoints as a service.
"""

from gateway.routes import accounts, activations, billing, licenses, ops, web


class GatewayService(
    accounts.AccountRoutes,
    licenses.LicenseRoutes,
    activations.ActivationRoutes,
    billing.BillingRoutes,
    ops.OpsRoutes,
    web.WebRoutes,
):
    name = "gateway"
