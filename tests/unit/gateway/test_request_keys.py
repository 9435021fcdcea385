"""The request key: every state-changing HTTP request runs its worker with `request_key` in
the context data (the client's `Idempotency-Key`, else a new one per request), before any RPC;
reads have none; a malformed key is a 422 before a worker runs; identifiers in paths arrive
canonical; the OpenAPI document says all of it.

The route is driven as nameko's web server drives it (`JsonRoute.handle_request`), with a
container that runs the real route method on a `worker_factory` service, so the context
data is the worker's own.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from nameko.containers import WorkerContext
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from gateway import openapi, request_keys
from gateway.http import ROUTES, GatewayRequest, JsonRoute, canonical_parameters
from gateway.service import GatewayService
from tests.unit.gateway.support import TOKEN, FakeAuth
from tests.unit.gateway.test_billing_routes import LICENSE, Billing, Licensing

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}


class Container:
    """Spawns a worker the way nameko does: a WorkerContext with the context data, then the
    route method of a service whose dependencies are fakes."""

    service_cls = GatewayService
    service_name = "gateway"

    def __init__(self) -> None:
        self.shared_extensions: dict = {}
        self.billing = Billing()
        self.workers: list[WorkerContext] = []
        self.service = worker_factory(
            GatewayService, auth=FakeAuth(), billing=self.billing, licensing=Licensing(LICENSE)
        )

    def spawn_worker(
        self, entrypoint: JsonRoute, args: tuple, kwargs: dict, context_data: dict, handle_result
    ) -> None:
        worker = WorkerContext(self, self.service, entrypoint, args, kwargs, data=context_data)
        self.workers.append(worker)
        try:
            result = getattr(self.service, entrypoint.method_name)(*args, **kwargs)
        except Exception as exc:  # as nameko hands a worker's exception on
            handle_result(worker, None, (type(exc), exc, exc.__traceback__))
            return
        handle_result(worker, result, None)


def route(container: Container, method_name: str) -> JsonRoute:
    (declared,) = getattr(GatewayService, method_name).nameko_entrypoints
    return declared.bind(container, method_name)


def http(
    container: Container,
    method_name: str,
    method: str,
    path: str,
    body: dict | None = None,
    headers: dict[str, str] | None = None,
    **path_values: str,
) -> Response:
    environ = EnvironBuilder(
        method=method,
        path=path,
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}", **(headers or {})},
    ).get_environ()
    request = GatewayRequest(environ)
    request.path_values = path_values
    return route(container, method_name).handle_request(request)


def purchase(container: Container, headers: dict[str, str] | None = None) -> Response:
    body = {"plan": "cad-m", "seats": 2, "card": CARD}
    return http(container, "purchase", "POST", "/api/v1/purchases", body, headers)


def test_the_clients_key_is_in_the_worker_context_and_the_purchase_payload() -> None:
    container = Container()
    response = purchase(container, {"Idempotency-Key": "attempt-0c1f"})
    assert response.status_code == 201, response.get_data(as_text=True)
    (worker,) = container.workers
    assert worker.data[request_keys.CONTEXT_KEY] == "attempt-0c1f"
    assert container.billing.purchases[0][1]["request_key"] == "attempt-0c1f"


def test_without_a_key_each_request_gets_its_own_the_same_in_context_and_payload() -> None:
    container = Container()
    purchase(container)
    purchase(container)
    keys = [worker.data[request_keys.CONTEXT_KEY] for worker in container.workers]
    assert len(set(keys)) == 2 and all(len(key) == 32 for key in keys)
    assert [payload["request_key"] for _, payload in container.billing.purchases] == keys


def test_every_state_change_carries_a_key_and_a_read_none() -> None:
    container = Container()
    cancel = http(
        container,
        "cancel_recurring_payment",
        "POST",
        "/api/v1/recurring-payments/rp_1/cancel",
        recurring_payment_id="rp_1",
    )
    assert cancel.status_code == 200
    card = http(
        container,
        "replace_card",
        "PUT",
        "/api/v1/recurring-payments/rp_1/card",
        {"card": CARD},
        {"Idempotency-Key": "card-1"},
        recurring_payment_id="rp_1",
    )
    assert card.status_code == 200, card.get_data(as_text=True)
    listed = http(container, "list_payments", "GET", "/api/v1/payments")
    assert listed.status_code == 200
    cancelled, carded, read = (worker.data for worker in container.workers)
    assert len(cancelled[request_keys.CONTEXT_KEY]) == 32
    assert carded[request_keys.CONTEXT_KEY] == "card-1"
    assert request_keys.CONTEXT_KEY not in read


@pytest.mark.parametrize("key", ["", "x" * 65, "tab\there", "line\nbreak"])
def test_a_malformed_key_is_a_422_before_any_worker(key: str) -> None:
    container = Container()
    # werkzeug refuses a header value with a line break; the server would too
    request = GatewayRequest(EnvironBuilder(method="POST", json={}).get_environ())
    request.environ["HTTP_IDEMPOTENCY_KEY"] = key
    request.path_values = {"recurring_payment_id": "rp_1"}
    response = route(container, "resume_recurring_payment").handle_request(request)
    assert response.status_code == 422
    error = json.loads(response.get_data())["error"]
    assert error["code"] == "validation_error"
    assert "Idempotency-Key" in error["details"]["fields"]
    assert container.workers == []


def test_a_key_of_64_printable_characters_is_taken() -> None:
    assert request_keys.check_key("k" * 64) == "k" * 64
    assert request_keys.check_key("Ünïcödé-ok") == "Ünïcödé-ok"


def test_the_key_is_worked_out_once_per_request() -> None:
    request = Request(EnvironBuilder(method="DELETE").get_environ())
    assert request_keys.key_for(request) == request_keys.key_for(request)
    assert request_keys.context_data(request) == {"request_key": request_keys.key_for(request)}
    read = Request(EnvironBuilder(method="GET", headers={"Idempotency-Key": "k"}).get_environ())
    assert request_keys.context_data(read) == {}


# --- identifiers in paths ------------------------------------------------------------------


def test_identifiers_in_paths_arrive_canonical() -> None:
    assert canonical_parameters(
        {
            "license_id": " l-edpq-yvv2 ",
            "receipt_number": "r-2026-000123",
            "installation_id": "ws-07/Straße",
            "recurring_payment_id": "rp_4f1c",
        }
    ) == {
        "license_id": "L-EDPQ-YVV2",
        "receipt_number": "R-2026-000123",
        "installation_id": "ws-07/Straße",
        "recurring_payment_id": "rp_4f1c",
    }


def test_a_lower_case_license_path_asks_licensing_for_the_canonical_id() -> None:
    asked: list[Any] = []

    class Recording(Licensing):
        def get_license(
            self, license_id: str, customer_id: str, reveal_password: bool = True
        ) -> dict:
            asked.append(license_id)
            return {"license_id": license_id, "product": {"code": "cadpro"}}

    container = Container()
    container.service = worker_factory(GatewayService, auth=FakeAuth(), licensing=Recording())
    response = http(
        container, "get_license", "GET", "/api/v1/licenses/l-edpq-yvv2", license_id="l-edpq-yvv2"
    )
    assert response.status_code == 200
    assert asked == ["L-EDPQ-YVV2"]
    assert json.loads(response.get_data())["license_id"] == "L-EDPQ-YVV2"


# --- the OpenAPI document --------------------------------------------------------------------


def test_openapi_documents_the_key_on_every_state_change_and_only_there() -> None:
    document = openapi.build()
    for entry in ROUTES:
        path = openapi._PARAM.sub(r"{\1}", entry.path)
        operation = document["paths"][path][entry.method.lower()]
        own = {p["name"] for p in openapi.HEADERS.get((entry.method, entry.path), [])}
        own.add(openapi.CSRF_TOKEN["name"])  # the cookie session's (test_openapi_exact.py)
        headers = [
            p
            for p in operation.get("parameters", [])
            if p["in"] == "header" and p["name"] not in own
        ]
        if request_keys.changes_state(entry.method):
            assert [p["name"] for p in headers] == ["Idempotency-Key"], path
            assert headers[0]["schema"]["maxLength"] == 64
            assert "`idempotency_key_reused`" in operation["responses"]["422"]["description"]
        else:
            assert headers == [], path
    purchase = document["paths"]["/api/v1/purchases"]["post"]
    description = purchase["responses"]["422"]["description"]
    assert description.count("`validation_error`") == 1  # each code once


def test_openapi_has_the_new_routes() -> None:
    paths = openapi.build()["paths"]
    assert "post" in paths["/api/v1/recurring-payments/{recurring_payment_id}/resume"]
    card = paths["/api/v1/recurring-payments/{recurring_payment_id}/card"]["put"]
    assert "402" in card["responses"] and "409" in card["responses"]
    assert {"get", "put"} <= set(paths["/api/v1/account/billing-details"])
    payments = paths["/api/v1/payments"]["get"]["responses"]["200"]
    assert payments["content"]["application/json"]["schema"]
