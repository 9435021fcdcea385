"""JSON over HTTP with the standard library, timeouts, and retries with exponential backoff.

`Transport` is the one seam to the network: `send(method, url, body, timeout)` returns a
`Response` or raises `OSError` for anything below HTTP (refused, reset, DNS, timeout, TLS).
`UrllibTransport` is the real one; tests pass a fake. `Api` adds JSON, the error envelope
and retries: a 502/503/504 or a network error is retried (every call of the activation API is
idempotent), a 4xx never is.
"""

from __future__ import annotations

import abc
import http.client
import json
import random
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Callable

from . import __version__
from .errors import LicenseError, NetworkError, ProtocolError, ServiceUnavailable, from_response

RETRYABLE_STATUSES = (502, 503, 504)
MAX_BODY = 1_048_576  # no answer of this API comes close; a bigger one is not our server


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""


class Transport(abc.ABC):
    """Sends one HTTP request; raises OSError when no HTTP answer came back."""

    @abc.abstractmethod
    def send(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str], timeout: float
    ) -> Response:
        """One request and its answer, whatever the status."""


class UrllibTransport(Transport):
    def send(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str], timeout: float
    ) -> Response:
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError(f"the server URL must be http(s): {url!r}")
        # the scheme was checked above: no file:// or custom handlers
        request = urllib.request.Request(url, data=body, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
                return Response(answer.status, _lower(answer.headers), answer.read(MAX_BODY))
        except urllib.error.HTTPError as error:
            try:
                data = error.read(MAX_BODY)
            except OSError:
                data = b""
            return Response(error.code, _lower(error.headers), data)
        except urllib.error.URLError as error:
            reason = error.reason
            raise reason if isinstance(reason, OSError) else OSError(str(reason)) from error
        except (socket.timeout, TimeoutError) as error:
            raise TimeoutError(f"no answer within {timeout}s") from error
        except http.client.HTTPException as error:  # a broken answer: IncompleteRead, BadStatusLine
            raise ConnectionError(f"broken HTTP answer: {error!r}") from error


class Api:
    """Calls of the License Portal HTTP API: JSON in and out, typed errors, retries."""

    def __init__(
        self,
        base_url: str,
        transport: Transport | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.transport = transport or UrllibTransport()
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep

    def call(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> Any:
        """The decoded JSON answer of a 2xx (None for an empty one, e.g. 204), else the
        matching `LicenseError`. `token` goes as `Authorization: Bearer` (a lease's token).

        Network errors and 502/503/504 are retried `retries` times, waiting
        `backoff * 2**attempt` seconds with jitter (or the server's `Retry-After`), capped at
        `max_backoff`; then `NetworkError` or `ServiceUnavailable` is raised.
        """
        url = self.base_url + path
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        headers = {"Accept": "application/json", "User-Agent": f"license-client/{__version__}"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            try:
                return self._once(method, url, body, headers)
            except ServiceUnavailable as error:  # NetworkError included
                if attempt >= self.retries:
                    raise
                self.sleep(self._delay(attempt, error.retry_after))
                attempt += 1

    def _once(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Any:
        try:
            response = self.transport.send(method, url, body, headers, self.timeout)
        except (OSError, ValueError) as error:
            if isinstance(error, ValueError) and not isinstance(error, UnicodeError):
                raise LicenseError(str(error), code="bad_url") from error
            raise NetworkError(
                f"The license server at {self.base_url} could not be reached: "
                f"{error or type(error).__name__}"
            ) from error
        data = _json(response.body)
        if 200 <= response.status < 300:
            if data is None and response.body.strip():
                raise ProtocolError(
                    f"The license server answered HTTP {response.status} with a non-JSON body.",
                    status=response.status,
                )
            return data
        retry_after = _retry_after(response.headers.get("retry-after"))
        raise from_response(response.status, data, retry_after, self.base_url)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(self.max_backoff, max(0.0, retry_after))
        # jitter, so that many clients that lost the server at once do not return in lockstep
        ceiling = min(self.max_backoff, self.backoff * (2**attempt))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def _json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _lower(headers: Any) -> dict[str, str]:
    return {str(name).lower(): str(value) for name, value in headers.items()}
