"""The gateway's HTTP server: nameko's `WebServer`, made to survive idle and abusive clients.

nameko serves with eventlet's WSGI server as it comes: no socket timeout, a green thread per
connection without bound, and an accept loop whose first error (EMFILE once descriptors run
out) ends the gateway. `GuardedWebServer` keeps its routing and adds:

- a header deadline: a connection has GATEWAY_HEADER_TIMEOUT_SECONDS (default 10) from the
  moment the server waits for a request (the first one, or the next on a kept-alive
  connection) until its request line and headers are in, however slowly it trickles them;
  then it is closed;
- a socket timeout: any one read or write waits at most GATEWAY_BODY_TIMEOUT_SECONDS
  (default 30), which is also the time a whole request body has to arrive (`gateway.http`
  reads it before routing);
- a cap: at most GATEWAY_MAX_CONNECTIONS (default 1000) connections are served at once; one
  more is answered 503 `service_unavailable` at once and closed within a second (what it
  sent is read meanwhile, so that the client sees the answer rather than a reset);
- a cap per client: at most GATEWAY_MAX_CONNECTIONS_PER_ADDRESS (default 50) of them come
  from one socket peer (an IPv6 peer counts by its /64, what one host is usually given), so
  that one client holding or churning connections fills its own share, not everyone's; one
  more is refused like the above. Peers in TRUSTED_PROXIES are exempt: behind a reverse
  proxy every connection comes from the proxy;
- an accept loop that outlives its errors: out of descriptors (EMFILE, ENFILE) or buffers,
  it logs, pauses (growing up to a second) and accepts again as connections end; a
  connection's own unexpected error is logged and closes that connection only.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import socket
from dataclasses import dataclass
from functools import partial
from typing import Any

import eventlet
from eventlet import wsgi
from nameko.web.server import HttpOnlyProtocol, WebServer

from common import settings
from gateway import clients
from gateway.responses import security_headers

log = logging.getLogger(__name__)

DEFAULT_MAX_CONNECTIONS = 1000
DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 50
# an IPv6 client is one /64: a single host is commonly handed a whole one
IPV6_CLIENT_PREFIX = 64
DEFAULT_HEADER_TIMEOUT_SECONDS = 10.0
DEFAULT_BODY_TIMEOUT_SECONDS = 30.0

# accept() failing because the process or the system ran out of something that frees up
# as connections end: wait, then accept again
EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# accept() failing for that one connection (it went away before it was taken)
ONE_CONNECTION = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EAGAIN})
# the WSGI environ key of a function that closes the connection after the answer (instead of
# reading what is left of a refused body so that it can serve the next request)
CLOSE_CONNECTION = "gateway.close_connection"
# how long a refused connection is given to take its 503, and how many may take it at once
# (beyond that they are closed at once)
REFUSAL_LINGER_SECONDS = 1.0
MAX_LINGERING_REFUSALS = 64
FIRST_PAUSE_SECONDS = 0.05
LONGEST_PAUSE_SECONDS = 1.0


@dataclass(frozen=True)
class Limits:
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    header_timeout: float = DEFAULT_HEADER_TIMEOUT_SECONDS
    body_timeout: float = DEFAULT_BODY_TIMEOUT_SECONDS
    max_connections_per_address: int = DEFAULT_MAX_CONNECTIONS_PER_ADDRESS
    # peers whose connections are not counted per address (TRUSTED_PROXIES)
    exempt: tuple[clients.Network, ...] = ()

    @classmethod
    def from_settings(cls) -> Limits:
        limits = cls(
            max_connections=settings.get_int("GATEWAY_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS),
            max_connections_per_address=settings.get_int(
                "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS", DEFAULT_MAX_CONNECTIONS_PER_ADDRESS
            ),
            exempt=clients.trusted_proxies(),
            header_timeout=settings.get_float(
                "GATEWAY_HEADER_TIMEOUT_SECONDS", DEFAULT_HEADER_TIMEOUT_SECONDS
            ),
            body_timeout=settings.get_float(
                "GATEWAY_BODY_TIMEOUT_SECONDS", DEFAULT_BODY_TIMEOUT_SECONDS
            ),
        )
        if (
            limits.max_connections < 1
            or limits.max_connections_per_address < 1
            or limits.header_timeout <= 0
            or limits.body_timeout <= 0
        ):
            raise ValueError(f"gateway limits must be positive: {limits}")
        return limits


def address_key(peer: Any, exempt: tuple[clients.Network, ...]) -> str | None:
    """What a connection from `peer` (as accept() gives it) counts against per address: its
    IPv4 address or IPv6 /64; None for an exempt (trusted proxy) or unknown peer.

        >>> address_key(("2001:db8::1", 5123, 0, 0), ())
        '2001:db8::/64'
    """
    host = peer[0] if isinstance(peer, tuple) and peer else None
    address = clients.parse_address(host if isinstance(host, str) else None)
    if address is None:
        return None
    if any(address.version == net.version and address in net for net in exempt):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False))
    return str(address)


class HeaderTimeout(TimeoutError):
    """The client did not send a whole request line and headers within the deadline."""


class GuardedProtocol(HttpOnlyProtocol):
    """eventlet's HTTP/1.1 protocol with a deadline on each request's line and headers."""

    def handle_one_request(self) -> None:
        # a TimeoutError is what eventlet's server already expects from a slow client: it
        # ends the connection quietly (`wsgi.Server.process_request`)
        self._header_deadline = eventlet.Timeout(self.server.header_timeout, HeaderTimeout())
        try:
            super().handle_one_request()
        finally:
            self._header_deadline.cancel()

    def parse_request(self) -> bool:
        try:
            return super().parse_request()
        finally:
            self._header_deadline.cancel()  # the headers are in: the request may take its time

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        environ[CLOSE_CONNECTION] = self._close_after_answer
        return environ

    def _close_after_answer(self) -> None:
        self.close_connection = 1


class GuardedWsgiServer(wsgi.Server):
    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout


def busy_answer() -> bytes:
    """The whole HTTP answer to a connection over the cap: 503 with the JSON envelope."""
    body = json.dumps(
        {
            "error": {
                "code": "service_unavailable",
                "message": "The portal is busy. Please try again in a moment.",
                "details": {},
            }
        }
    ).encode()
    headers = {
        **security_headers(),
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        "Retry-After": "5",
        "Connection": "close",
    }
    head = "HTTP/1.1 503 Service Unavailable\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (head + "\r\n").encode("latin-1") + body


class GuardedWebServer(WebServer):
    """nameko's web server with the limits of the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.limits = Limits()
        self.open_connections = 0
        # open connections by `address_key`; an address leaves when its last one ends
        self.connections_by_address: dict[str, int] = {}
        self.lingering_refusals = 0
        self._busy = b""

    def start(self) -> None:
        if not self._starting:
            self.limits = Limits.from_settings()
            self._busy = busy_answer()
        super().start()

    def get_wsgi_server(
        self,
        sock: Any,
        wsgi_app: Any,
        protocol: type = GuardedProtocol,
        debug: bool = False,
    ) -> GuardedWsgiServer:
        return GuardedWsgiServer(
            sock,
            sock.getsockname(),
            wsgi_app,
            protocol=protocol,
            debug=debug,
            # eventlet's access log, quiet at nameko's WARNING level as before
            log=logging.getLogger("nameko.web.server"),
            socket_timeout=self.limits.body_timeout,
            header_timeout=self.limits.header_timeout,
        )

    def run(self) -> None:
        pause = 0.0
        while self._is_accepting:
            try:
                sock, address = self._sock.accept()
            except OSError as exc:
                if not self._is_accepting:
                    return
                pause = self._accept_failed(exc, pause)
                continue
            pause = 0.0
            key = address_key(address, self.limits.exempt)
            if self.open_connections >= self.limits.max_connections or (
                key is not None
                and self.connections_by_address.get(key, 0)
                >= self.limits.max_connections_per_address
            ):
                self._refuse(sock)
                continue
            self.open_connections += 1
            if key is not None:
                self.connections_by_address[key] = self.connections_by_address.get(key, 0) + 1
            sock.settimeout(self.limits.body_timeout)
            self.container.spawn_managed_thread(partial(self._serve, sock, address, key))

    def _accept_failed(self, exc: OSError, pause: float) -> float:
        """Log a failed accept and wait if waiting helps; the next pause."""
        if exc.errno in ONE_CONNECTION:
            return pause
        if exc.errno in EXHAUSTED:
            if not pause:
                log.error(
                    "cannot accept connections (%s) with %d open; pausing until some end",
                    errno.errorcode.get(exc.errno, exc.errno),
                    self.open_connections,
                )
        else:
            log.error("accepting a connection failed; pausing", exc_info=exc)
        pause = min(LONGEST_PAUSE_SECONDS, max(FIRST_PAUSE_SECONDS, pause * 2))
        eventlet.sleep(pause)
        return pause

    def _refuse(self, sock: socket.socket) -> None:
        """Answer a connection over the cap with a 503 and close it; under a flood of them,
        without waiting for anything."""
        if self.lingering_refusals >= MAX_LINGERING_REFUSALS:
            try:
                sock.setblocking(False)
                sock.send(self._busy)
            except OSError:
                pass
            finally:
                sock.close()
            return
        self.lingering_refusals += 1
        self.container.spawn_managed_thread(partial(self._linger, sock))

    def _linger(self, sock: socket.socket) -> None:
        try:
            with eventlet.Timeout(REFUSAL_LINGER_SECONDS, False):
                sock.sendall(self._busy)
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(4096):
                    pass
        except OSError:
            pass
        finally:
            self.lingering_refusals -= 1
            sock.close()

    def _serve(self, sock: socket.socket, address: Any, key: str | None) -> None:
        try:
            self.process_request(sock, address)
        except Exception:
            # one connection's trouble (a client that vanished mid-write, ...) must not
            # take the managed thread, and with it the whole gateway, down
            log.warning("connection from %s ended by an error", address, exc_info=True)
        finally:
            self.open_connections -= 1
            if key is not None:
                left = self.connections_by_address.pop(key) - 1
                if left:
                    self.connections_by_address[key] = left
            sock.close()
