"""Log records fit for operators: an expected refusal is one line, never a traceback.

nameko logs every error that an entrypoint declares in `expected_exceptions` (our
`PortalError`: bad input, an unknown ID, a declined card) at WARNING with its traceback,
as if something were broken. `ExpectedErrors`, a filter on the console handler of
config.yaml, turns such a record into one INFO line naming the method and the error code.
"""

from __future__ import annotations

import logging

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
