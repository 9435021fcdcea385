"""Log records fit for operators: an expected refusal is one line, never a traceback.

nameko logs every error that an entrypoint declares in `expected_exceptions` (our
`PortalError`: bad input, an unknown ID, a declined card) at WARNING with its traceback,
as if something were broken. `ExpectedErrors`, a filter on the console handler of
config.yaml, turns such a record into one INFO line naming the method and the error code.

`RequestIds` stamps every record with the service and the request ID of the worker that
logged it, and `JsonLines` writes one JSON object a line (`LOG_FORMAT=json`, DESIGN.md §14).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from eventlet import corolocal

from common.context import REQUEST_ID, current_request_id
from common.errors import PortalError

EXPECTED_PREFIX = "(expected) error handling worker"


class ExpectedErrors(logging.Filter):
    """Rewrites nameko's "(expected) error handling worker" records as one INFO line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not (isinstance(record.msg, str) and record.msg.startswith(EXPECTED_PREFIX)):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        worker = args[0] if args else None
        error = args[1] if len(args) > 1 else None
        entrypoint = getattr(worker, "entrypoint", None)
        method = getattr(entrypoint, "method_name", None) or "?"
        service = getattr(worker, "service_name", None) or "?"
        code = error.code if isinstance(error, PortalError) else type(error).__name__
        record.msg = "%s.%s answered %s: %s"
        record.args = (service, method, code, error)
        record.levelno = logging.INFO
        record.levelname = logging.getLevelName(logging.INFO)
        record.exc_info = None
        record.exc_text = None
        return True


# --- correlated lines: the service and request ID of every record (DESIGN.md §14) -----------

_worker = corolocal.local()
_process = {"service": None}


def set_process_service(name: str | None) -> None:
    """The service this process runs (the first container to start names it)."""
    if _process["service"] is None or name is None:
        _process["service"] = name


def set_worker_service(name: str | None) -> None:
    """The service of the worker running in this greenthread (None forgets it)."""
    _worker.service = name


def current_service() -> str | None:
    return getattr(_worker, "service", None) or _process["service"]


class RequestIds(logging.Filter):
    """Stamps each record with `service` and `request_id` (the current worker's, or None),
    for any formatter to use (`%(request_id)s`, or `JsonLines`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, REQUEST_ID):
            setattr(record, REQUEST_ID, current_request_id())
        if not hasattr(record, "service"):
            record.service = current_service()
        return True


class JsonLines(logging.Formatter):
    """One JSON object a line: `{"ts", "level", "service", "logger", "message",
    "request_id"}`, plus `exc` (the traceback) when the record has one.

    `{"ts": "2026-12-02T10:30:00.123Z", "level": "INFO", "service": "licensing", "logger":
    "services.licensing.service", "message": "...", "request_id": "4f0c..."}`
    """

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, Any] = {
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "service": getattr(record, "service", None) or current_service(),
            "logger": record.name,
            "message": record.getMessage(),
            REQUEST_ID: getattr(record, REQUEST_ID, None) or current_request_id(),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)
