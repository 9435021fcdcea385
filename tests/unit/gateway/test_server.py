"""The gateway's HTTP server in this process, on a loopback socket: header deadline, the
connection caps (overall and per client address), accept errors, and the body read before
routing (`gateway.http`).

Clients on other addresses bind their socket to 127.0.0.2 or 127.0.0.3: all of 127/8 is local.

No nameko container: the server's managed threads are plain green threads here.
"""

from __future__ import annotations

import errno
import json
import socket

import eventlet
import pytest
from nameko import config as nameko_config

from gateway import clients
from gateway import server as server_module
from gateway.http import MAX_BODY_BYTES, JsonWebServer, JsonWsgiApp
from gateway.server import GuardedWebServer, Limits, address_key, busy_answer

CLIENT_TIMEOUT = 10  # a bound on a test that would otherwise hang, not a measured time
REQUEST = b"GET /x HTTP/1.1\r\nHost: portal.test\r\n\r\n"
HOG = "127.0.0.2"
NEIGHBOUR = "127.0.0.3"


class Container:
    def __init__(self) -> None:
        self.threads: list = []

    def spawn_managed_thread(self, fn, identifier=None):
        thread = eventlet.spawn(fn)
        self.threads.append(thread)
        return thread


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


@pytest.fixture
def serve():
    started = []

    def start(app=hello, server_class=GuardedWebServer, **limits):
        web = server_class()
        web.limits = Limits(**{"header_timeout": 0.3, "body_timeout": 5, **limits})
        web._busy = busy_answer()
        web.container = Container()
        web._sock = eventlet.listen(("127.0.0.1", 0))
        web._serv = web.get_wsgi_server(web._sock, app if app else JsonWsgiApp(web))
        started.append((web, eventlet.spawn(web.run)))
        return web, web._sock.getsockname()[1]

    yield start
    for web, thread in started:
        web._is_accepting = False
        thread.kill()
        for worker in web.container.threads:
            worker.kill()
        web._sock.close()


def connect(port: int, source: str | None = None) -> socket.socket:
    """A connection to the server, from the loopback address `source` if given."""
    return socket.create_connection(
        ("127.0.0.1", port),
        timeout=CLIENT_TIMEOUT,
        source_address=(source, 0) if source else None,
    )


def answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while True:
        part = sock.recv(65536)
        if not part:
            return received
        received += part


def ask(port: int, raw: bytes = REQUEST, source: str | None = None) -> bytes:
    with connect(port, source) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        return answer(sock)


def test_a_connection_that_sends_nothing_is_closed_at_the_header_deadline(serve):
    _, port = serve(body_timeout=60)
    with connect(port) as sock:
        assert sock.recv(1) == b""  # closed by the server, long before the socket timeout


def test_a_client_trickling_its_headers_is_closed_at_the_deadline(serve):
    _, port = serve(body_timeout=60)
    with connect(port) as sock:
        sock.sendall(b"GET /x HTTP/1.1\r\n")

        def trickle() -> None:
            try:
                while True:
                    sock.sendall(b"X")
                    eventlet.sleep(0.02)
            except OSError:
                return

        sender = eventlet.spawn(trickle)
        try:
            # every byte arrives well within any socket timeout; only a deadline ends this
            assert sock.recv(1) == b""
        finally:
            sender.kill()


def test_a_kept_alive_connection_is_closed_when_it_stays_idle(serve):
    _, port = serve()
    with connect(port) as sock:
        sock.sendall(REQUEST)
        first = b""
        while not first.endswith(b"hello"):
            first += sock.recv(1024)
        assert first.startswith(b"HTTP/1.1 200")
        assert answer(sock) == b""


def test_idle_connections_do_not_keep_a_real_request_out(serve):
    _, port = serve(max_connections_per_address=1000)
    idle = [connect(port) for _ in range(100)]
    try:
        assert ask(port).startswith(b"HTTP/1.1 200")
    finally:
        for sock in idle:
            sock.close()


def test_a_connection_over_the_cap_is_answered_503_at_once(serve):
    web, port = serve(max_connections=3, header_timeout=60)
    idle = [connect(port) for _ in range(3)]
    try:
        refused = ask(port)
        head, _, body = refused.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503")
        assert b"Retry-After: 5" in head and b"X-Content-Type-Options: nosniff" in head
        assert json.loads(body)["error"]["code"] == "service_unavailable"
    finally:
        for sock in idle:
            sock.close()
    # the held slots free up as those connections end; then a request is served
    while True:
        served = ask(port)
        if served.startswith(b"HTTP/1.1 200"):
            break
        eventlet.sleep(0.05)
    assert web.open_connections <= 1


def test_one_address_over_its_cap_is_refused_while_another_is_served(serve):
    web, port = serve(max_connections=10, max_connections_per_address=3, header_timeout=60)
    held = [connect(port, HOG) for _ in range(3)]
    try:
        head, error = head_and_body(ask(port, source=HOG))
        assert head.startswith(b"HTTP/1.1 503")
        assert error["error"]["code"] == "service_unavailable"
        # far below the overall cap: before the per-address cap, the hog was served too
        assert ask(port, source=NEIGHBOUR).startswith(b"HTTP/1.1 200")
        assert web.connections_by_address[HOG] == 3
    finally:
        for sock in held:
            sock.close()
    # its slots free up as its connections end; an address with none left is forgotten
    while not ask(port, source=HOG).startswith(b"HTTP/1.1 200"):
        eventlet.sleep(0.05)
    while web.connections_by_address:
        eventlet.sleep(0.01)


def test_a_trusted_proxy_is_not_capped_per_address(serve):
    web, port = serve(
        max_connections_per_address=2, header_timeout=60, exempt=clients.parse_networks(HOG)
    )
    held = [connect(port, HOG) for _ in range(3)]  # every client behind the proxy
    try:
        assert ask(port, source=HOG).startswith(b"HTTP/1.1 200")
        assert HOG not in web.connections_by_address
    finally:
        for sock in held:
            sock.close()


def test_the_address_a_connection_counts_against() -> None:
    proxies = clients.parse_networks("10.0.0.0/8, 2001:db8:1::/48")
    assert address_key(("203.0.113.4", 5123), proxies) == "203.0.113.4"
    assert address_key(("::ffff:203.0.113.4", 5123, 0, 0), proxies) == "203.0.113.4"
    # one IPv6 host is one /64, however many addresses of it it uses
    assert address_key(("2001:db8:2:3::1", 1, 0, 0), ()) == "2001:db8:2:3::/64"
    assert address_key(("2001:db8:2:3:ffff::9", 1, 0, 0), ()) == "2001:db8:2:3::/64"
    assert address_key(("10.1.2.3", 5123), proxies) is None  # a trusted proxy
    assert address_key(("2001:db8:1:9::1", 1, 0, 0), proxies) is None
    assert address_key("/run/gateway.sock", ()) is None  # not an IP peer: not counted


def test_the_per_address_cap_and_the_proxies_come_from_the_settings() -> None:
    with nameko_config.patch(
        {"GATEWAY_MAX_CONNECTIONS_PER_ADDRESS": "7", "TRUSTED_PROXIES": "10.0.0.0/8"}
    ):
        limits = Limits.from_settings()
    assert limits.max_connections_per_address == 7
    assert limits.exempt == clients.parse_networks("10.0.0.0/8")
    with (
        nameko_config.patch({"GATEWAY_MAX_CONNECTIONS_PER_ADDRESS": "0"}),
        pytest.raises(ValueError, match="positive"),
    ):
        Limits.from_settings()


class FailingListener:
    """A listening socket whose accept() fails with each of `errors`, then stops the loop."""

    def __init__(self, web: GuardedWebServer, errors: list[int]) -> None:
        self.web = web
        self.errors = list(errors)

    def accept(self):
        if not self.errors:
            self.web._is_accepting = False
            raise OSError(errno.EBADF, "closed")
        raise OSError(self.errors.pop(0), "accept failed")


def test_running_out_of_descriptors_pauses_accepting_instead_of_ending_the_gateway(
    monkeypatch, caplog
):
    pauses = []
    monkeypatch.setattr(server_module.eventlet, "sleep", pauses.append)
    web = GuardedWebServer()
    web._sock = FailingListener(
        web, [errno.EMFILE, errno.EMFILE, errno.ENFILE, errno.ECONNABORTED, errno.EMFILE]
    )
    web.run()  # returns when told to stop; raises nothing
    assert pauses == [0.05, 0.1, 0.2, 0.4]  # growing; a dropped connection costs no pause
    assert "EMFILE" in caplog.text


def test_an_unexpected_error_on_one_connection_is_logged_not_fatal(serve, caplog):
    web, port = serve()

    def broken(conn_state):
        raise RuntimeError("protocol bug")

    web._serv.process_request = broken
    with connect(port) as sock:
        assert answer(sock) == b""
    while web.open_connections:
        eventlet.sleep(0.01)
    assert "ended by an error" in caplog.text
    web._serv.process_request = type(web._serv).process_request.__get__(web._serv)
    assert ask(port).startswith(b"HTTP/1.1 200")


# --- the body, read before routing (gateway.http.JsonWsgiApp) ---------------------------------


def head_and_body(raw: bytes) -> tuple[bytes, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return head, json.loads(body) if body else {}


def test_a_declared_oversized_body_is_refused_before_a_byte_of_it_is_read(serve):
    _, port = serve(app=None, server_class=JsonWebServer)
    with connect(port) as sock:
        sock.sendall(
            b"POST /web/logout HTTP/1.1\r\nHost: portal.test\r\nCookie: portal_session=x\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 50000000\r\n\r\n--b\r\n"
        )
        head, error = head_and_body(answer(sock))  # the rest of the body is never sent
    assert head.startswith(b"HTTP/1.1 413")
    assert b"Connection: close" in head
    assert error["error"]["code"] == "payload_too_large"


def test_a_chunked_body_is_cut_at_the_limit(serve):
    _, port = serve(app=None, server_class=JsonWebServer)
    chunk = b"x" * 8192
    with connect(port) as sock:
        sock.sendall(
            b"POST /api/v1/sessions HTTP/1.1\r\nHost: portal.test\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        try:
            for _ in range(MAX_BODY_BYTES // len(chunk) + 2):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass  # the server may stop listening once it has had enough
        head, error = head_and_body(answer(sock))
    assert head.startswith(b"HTTP/1.1 413")
    assert error["error"]["code"] == "payload_too_large"


def test_a_body_that_does_not_arrive_in_time_is_408(serve):
    _, port = serve(app=None, server_class=JsonWebServer, body_timeout=0.3)
    with connect(port) as sock:
        sock.sendall(
            b"POST /api/v1/sessions HTTP/1.1\r\nHost: portal.test\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        head, error = head_and_body(answer(sock))
    assert head.startswith(b"HTTP/1.1 408")
    assert error["error"]["code"] == "request_timeout"


def test_every_answer_has_the_security_headers(serve):
    _, port = serve(app=None, server_class=JsonWebServer)
    head, error = head_and_body(ask(port, b"GET /api/v1/nowhere HTTP/1.1\r\nHost: p\r\n\r\n"))
    assert head.startswith(b"HTTP/1.1 404") and error["error"]["code"] == "not_found"
    for header in (b"X-Content-Type-Options: nosniff", b"X-Frame-Options: DENY"):
        assert header in head
    assert b"Referrer-Policy: no-referrer" in head
    assert b"frame-ancestors 'none'" in head
