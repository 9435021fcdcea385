"""common.logs: nameko's record of an expected refusal becomes one INFO line."""

from __future__ import annotations

import logging
import sys
from types import SimpleNamespace

from common.errors import NotFound
from common.logs import ExpectedErrors


def record(msg: str, args: tuple, exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord("nameko.containers", logging.WARNING, "x.py", 1, msg, args, exc_info)


def test_an_expected_error_is_one_info_line_without_traceback() -> None:
    worker = SimpleNamespace(
        service_name="licensing", entrypoint=SimpleNamespace(method_name="get_license")
    )
    error = NotFound("No such license.", code="license_not_found")
    try:
        raise error
    except NotFound:
        entry = record("(expected) error handling worker %s: %s", (worker, error), sys.exc_info())
    assert ExpectedErrors().filter(entry)
    assert entry.levelno == logging.INFO and entry.levelname == "INFO"
    assert entry.exc_info is None
    assert (
        entry.getMessage() == "licensing.get_license answered license_not_found: No such license."
    )
    formatted = logging.Formatter("%(levelname)s %(message)s").format(entry)
    assert "\n" not in formatted and "Traceback" not in formatted


def test_other_records_pass_unchanged() -> None:
    entry = record("error handling worker %s: %s", ("w", "boom"))
    assert ExpectedErrors().filter(entry)
    assert entry.levelno == logging.WARNING
    assert entry.getMessage() == "error handling worker w: boom"
