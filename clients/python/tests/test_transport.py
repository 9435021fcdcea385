"""HTTP: the error envelope becomes typed errors; 503 and network errors are retried with
exponential backoff, 4xx never; real sockets through urllib on loopback."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from license_client import (
    InvalidCredentials,
    LicenseError,
    LicenseExpired,
    LicenseSuspended,
    NetworkError,
    NoSeatsAvailable,
    ProtocolError,
    ServiceUnavailable,
    TooManyAttempts,
    ValidationError,
    WrongProduct,
)
from license_client.errors import from_response
from license_client.transport import Api, Response, Transport, UrllibTransport


def envelope(code: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": f"{code} happened", "details": details or {}}}


@pytest.mark.parametrize(
    ("status", "code", "cls", "message"),
    [
        (401, "invalid_credentials", InvalidCredentials, None),
        (
            409,
            "no_seats_available",
            NoSeatsAvailable,
            "Every seat of this license is in use: ask your administrator to free a seat in "
            "the portal.",
        ),
        (
            403,
            "license_expired",
            LicenseExpired,
            "This license expired: renew it in the portal, then try again.",
        ),
        (
            403,
            "license_suspended",
            LicenseSuspended,
            "This license is suspended: contact your vendor.",
        ),
        (429, "too_many_attempts", TooManyAttempts, None),
        (422, "validation_error", ValidationError, None),
        (400, "invalid_json", ValidationError, None),
        (503, "service_unavailable", ServiceUnavailable, None),
        (418, "something_new", LicenseError, None),
    ],
)
def test_each_api_code_maps_to_its_error(status, code, cls, message):
    """The server's message, unless the kit explains the error better (`explain`)."""
    error = from_response(status, envelope(code))
    assert type(error) is cls
    expected = message or f"{code} happened"
    assert (error.code, error.status, error.message, str(error)) == (
        code,
        status,
        expected,
        expected,
    )
    assert isinstance(error, LicenseError)


def test_the_kit_explains_refusals_with_what_happened_since_when_and_what_next():
    portal = "https://licenses.example.com"
    machines = [{"machine_name": "CAD-WS-01"}, {"machine_name": "LAPTOP-3"}]
    details = {"license_id": "L-7KQX-M2PD", "seats": 2, "machines": machines}
    no_seat = from_response(409, envelope("no_seats_available", details), portal=portal)
    assert no_seat.message == (
        "All 2 seats of license L-7KQX-M2PD are in use (on CAD-WS-01, LAPTOP-3): ask your "
        "administrator to free a seat in the portal (https://licenses.example.com)."
    )
    details = {"license_id": "L-7KQX-M2PD", "seats": 1, "machines": machines[:1]}
    one = from_response(409, envelope("no_seats_available", details), portal=portal)
    assert one.message.startswith("The one seat of license L-7KQX-M2PD is in use (on CAD-WS-01)")
    details = {"license_id": "L-7KQX-M2PD", "expires_at": "2026-05-31T23:59:59+00:00"}
    expired = from_response(403, envelope("license_expired", details), portal=portal)
    assert expired.message == (
        "License L-7KQX-M2PD expired on 2026-05-31 23:59 UTC: renew it in the portal "
        "(https://licenses.example.com), then try again."
    )
    details = {"license_id": "L-7KQX-M2PD"}
    suspended = from_response(403, envelope("license_suspended", details), portal=portal)
    assert suspended.message == "License L-7KQX-M2PD is suspended: contact your vendor."
    details = {"license_id": "L-7KQX-M2PD", "product": "cadpro", "requested": "femsolver"}
    body = envelope("wrong_product", details)
    body["error"]["message"] = "License L-7KQX-M2PD is for CAD Pro (cadpro), not femsolver."
    wrong = from_response(409, body, portal=portal)
    assert isinstance(wrong, WrongProduct) and wrong.product == "cadpro"
    assert wrong.message == (
        "License L-7KQX-M2PD is for CAD Pro (cadpro), not femsolver. No seat was taken: use "
        "a license of this product, or check the product code this program is configured "
        "with."
    )


@pytest.mark.parametrize(
    "details",
    [
        {"installations": [{"machine_name": "pc-1"}, {"machine_name": "pc-2"}]},
        {"machine_names": ["pc-1", "pc-2"]},
        {"machines": [{"name": "pc-1"}, "pc-2", 5]},
    ],
)
def test_no_seats_names_the_machines(details):
    error = from_response(409, envelope("no_seats_available", {"seats": 2, **details}))
    assert error.machines == ["pc-1", "pc-2"]
    assert error.seats == 2


def test_too_many_attempts_carries_retry_after_from_details_or_header():
    assert from_response(429, envelope("too_many_attempts", {"retry_after": 42})).retry_after == 42
    assert from_response(429, envelope("too_many_attempts"), retry_after=7.0).retry_after == 7.0
    assert from_response(429, None).retry_after is None


def test_validation_error_exposes_fields():
    error = from_response(422, envelope("validation_error", {"fields": {"machine_name": ["x"]}}))
    assert error.fields == {"machine_name": ["x"]}


def test_answers_without_envelope():
    assert type(from_response(502, None)) is ServiceUnavailable
    assert type(from_response(404, "<html>")) is ProtocolError
    assert type(from_response(500, {"error": "flat string"})) is ProtocolError


class Scripted(Transport):
    """Answers from a script: a Response, or an exception to raise."""

    def __init__(self, *steps: object) -> None:
        self.steps = list(steps)
        self.calls = 0

    def send(self, method, url, body, headers, timeout):
        self.calls += 1
        step = self.steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step


def ok(document: object = None) -> Response:
    return Response(200, {}, json.dumps(document or {"ok": True}).encode())


def unavailable(retry_after: str | None = None) -> Response:
    headers = {"retry-after": retry_after} if retry_after else {}
    return Response(503, headers, json.dumps(envelope("service_unavailable")).encode())


def api(transport: Transport, sleeps: list, retries: int = 3) -> Api:
    return Api("http://portal.test/", transport, retries=retries, backoff=0.5, sleep=sleeps.append)


def test_503_is_retried_with_exponential_backoff_then_succeeds():
    sleeps: list[float] = []
    transport = Scripted(unavailable(), unavailable(), unavailable(), ok())
    assert api(transport, sleeps).call("GET", "/x") == {"ok": True}
    assert transport.calls == 4
    # equal jitter: attempt n waits between half and all of 0.5 * 2**n seconds
    for attempt, delay in enumerate(sleeps):
        assert 0.25 * 2**attempt <= delay <= 0.5 * 2**attempt
    assert sleeps[2] > sleeps[0]


def test_retries_run_out_on_503():
    sleeps: list[float] = []
    transport = Scripted(*[unavailable() for _ in range(4)])
    with pytest.raises(ServiceUnavailable) as caught:
        api(transport, sleeps).call("POST", "/x", {"a": 1})
    assert type(caught.value) is ServiceUnavailable
    assert transport.calls == 4 and len(sleeps) == 3


def test_retry_after_is_honoured_up_to_the_cap():
    sleeps: list[float] = []
    transport = Scripted(unavailable("2"), unavailable("3600"), ok())
    api(transport, sleeps).call("GET", "/x")
    assert sleeps == [2.0, 5.0]


def test_network_errors_are_retried_and_end_as_network_error():
    sleeps: list[float] = []
    transport = Scripted(ConnectionRefusedError(111, "refused"), TimeoutError("slow"), ok())
    assert api(transport, sleeps).call("GET", "/x") == {"ok": True}
    transport = Scripted(*[ConnectionResetError(104, "reset") for _ in range(2)])
    with pytest.raises(NetworkError) as caught:
        api(transport, sleeps, retries=1).call("GET", "/x")
    assert isinstance(caught.value, ServiceUnavailable)
    assert "could not be reached" in caught.value.message


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 429])
def test_client_errors_are_never_retried(status):
    sleeps: list[float] = []
    body = json.dumps(envelope("whatever")).encode()
    transport = Scripted(Response(status, {}, body), ok())
    with pytest.raises(LicenseError):
        api(transport, sleeps).call("POST", "/x", {})
    assert transport.calls == 1 and sleeps == []


def test_a_2xx_that_is_not_json_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        api(Scripted(Response(200, {}, b"<html>captive portal</html>")), []).call("GET", "/x")
    assert api(Scripted(Response(204, {}, b"")), []).call("POST", "/x") is None


# -- real sockets ---------------------------------------------------------------------------


HELD = True  # a scripted answer sent only once the test is over (a server that hangs)


class Handler(BaseHTTPRequestHandler):
    script: list = []
    seen: list = []
    released = threading.Event()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Handler.seen.append((self.path, self.headers.get("Content-Type"), json.loads(body)))
        status, document, held = Handler.script.pop(0)
        if held:
            Handler.released.wait(30)
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 503:
            self.send_header("Retry-After", "0")
        # a client that gave up on a held answer has closed the connection
        with contextlib.suppress(ConnectionError):
            self.end_headers()
            self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Handler.script, Handler.seen, Handler.released = [], [], threading.Event()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    Handler.released.set()
    httpd.shutdown()
    httpd.server_close()


def test_urllib_round_trip_and_error_envelope(server):
    Handler.script = [
        (503, envelope("service_unavailable"), False),
        (201, {"certificate": "a.b.c"}, False),
        (409, envelope("no_seats_available", {"machine_names": ["pc-9"]}), False),
    ]
    client = Api(server, UrllibTransport(), timeout=5, sleep=lambda s: None)
    assert client.call("POST", "/api/v1/activations", {"license_id": "L"}) == {
        "certificate": "a.b.c"
    }
    with pytest.raises(NoSeatsAvailable) as caught:
        client.call("POST", "/api/v1/activations", {"license_id": "L"})
    assert caught.value.machines == ["pc-9"]
    assert Handler.seen[0] == ("/api/v1/activations", "application/json", {"license_id": "L"})


def test_urllib_timeout_is_a_network_error(server):
    # the server answers only after the test: a client without a timeout would get a 200
    Handler.script = [(200, {}, HELD)]
    client = Api(server, UrllibTransport(), timeout=0.2, retries=0)
    with pytest.raises(NetworkError):
        client.call("POST", "/slow", {})


def test_urllib_refused_connection_is_a_network_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = Api(f"http://127.0.0.1:{port}", UrllibTransport(), timeout=2, retries=0)
    with pytest.raises(NetworkError):
        client.call("GET", "/api/v1/signing-keys")


def test_a_url_that_is_not_http_is_refused_without_a_request():
    with pytest.raises(LicenseError) as caught:
        Api("file:///etc", UrllibTransport(), retries=0).call("GET", "/passwd")
    assert caught.value.code == "bad_url"
