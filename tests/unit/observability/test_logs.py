"""Log lines an operator can follow: JSON objects with the service and the request ID,
chosen by LOG_FORMAT in config.yaml, and still one INFO line for an expected refusal."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from pathlib import Path

import eventlet
import pytest
from nameko.cli.utils.config import load_config, setup_yaml_parser

from common import logs
from common.context import set_request_id
from common.errors import PortalError

ROOT = Path(__file__).resolve().parents[3]
FIELDS = {"ts", "level", "service", "logger", "message", "request_id"}


def handler(formatter: logging.Formatter) -> tuple[logging.Handler, io.StringIO]:
    stream = io.StringIO()
    out = logging.StreamHandler(stream)
    out.setFormatter(formatter)
    out.addFilter(logs.ExpectedErrors())
    out.addFilter(logs.RequestIds())
    return out, stream


@pytest.fixture
def logger():
    log = logging.getLogger("tests.observability.json")
    log.setLevel(logging.INFO)
    log.propagate = False
    out, stream = handler(logs.JsonLines())
    log.addHandler(out)
    yield log, stream
    log.removeHandler(out)
    set_request_id(None)
    logs.set_worker_service(None)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_is_one_json_object_with_the_worker_s_service_and_request_id(logger) -> None:
    log, stream = logger
    set_request_id("req-42")
    logs.set_worker_service("licensing")
    log.info("activated %s on %s", "L-1", "ws-1")
    [line] = lines(stream)
    assert set(line) >= FIELDS
    assert line["message"] == "activated L-1 on ws-1"
    assert (line["level"], line["logger"]) == ("INFO", "tests.observability.json")
    assert (line["service"], line["request_id"]) == ("licensing", "req-42")
    assert line["ts"].endswith("Z") and "T" in line["ts"]


def test_each_greenthread_logs_its_own_request_id(logger) -> None:
    log, stream = logger

    def work(request_id: str) -> None:
        set_request_id(request_id)
        eventlet.sleep(0)  # the other worker runs meanwhile
        log.info("working")

    pool = eventlet.GreenPool()
    for request_id in ("a-1", "b-2", "c-3"):
        pool.spawn(work, request_id)
    pool.waitall()
    assert sorted(line["request_id"] for line in lines(stream)) == ["a-1", "b-2", "c-3"]


def test_a_traceback_stays_inside_its_line(logger) -> None:
    log, stream = logger
    try:
        raise RuntimeError("database\ngone")
    except RuntimeError:
        log.exception("unexpected")
    [line] = lines(stream)
    assert line["level"] == "ERROR" and "RuntimeError: database\ngone" in line["exc"]


def test_an_expected_refusal_is_still_one_info_line_without_traceback(logger) -> None:
    log, stream = logger
    set_request_id("req-7")
    error = PortalError("Wrong password.", code="invalid_credentials")
    worker = type("W", (), {"service_name": "licensing"})()
    worker.entrypoint = type("E", (), {"method_name": "activate"})()
    try:
        raise error
    except PortalError:
        log.warning("(expected) error handling worker %s: %s", worker, error, exc_info=True)
    [line] = lines(stream)
    assert line["level"] == "INFO" and "exc" not in line
    assert line["message"].startswith("licensing.activate answered invalid_credentials")
    assert line["request_id"] == "req-7"


def test_the_process_service_names_lines_outside_workers(logger) -> None:
    log, stream = logger
    before = logs.current_service()
    logs.set_process_service(None)
    logs.set_process_service("notify")
    logs.set_process_service("other")  # the first container names the process
    try:
        log.info("migrating")
        assert lines(stream)[0]["service"] == "notify"
    finally:
        logs.set_process_service(None)
        logs.set_process_service(before)


@pytest.mark.parametrize(("value", "json_lines"), [("json", True), (None, False)])
def test_log_format_chooses_the_formatter_in_config_yaml(monkeypatch, value, json_lines) -> None:
    if value is None:
        monkeypatch.delenv("LOG_FORMAT", raising=False)
    else:
        monkeypatch.setenv("LOG_FORMAT", value)
    setup_yaml_parser()
    with (ROOT / "config.yaml").open() as file:
        config = load_config(file)
    handler_config = config["LOGGING"]["handlers"]["console"]
    assert handler_config["formatter"] == ("json" if json_lines else "plain")
    assert "request_ids" in handler_config["filters"]
    stream = io.StringIO()
    handler_config["stream"] = stream
    previous = logging.getLogger().handlers[:]
    levels = {name: logging.getLogger(name).level for name in ("", "nameko", "kombu", "amqp")}
    try:
        logging.config.dictConfig(config["LOGGING"])
        set_request_id("cfg-1")
        logging.getLogger("tests.observability.config").warning("hello")
    finally:
        set_request_id(None)
        root = logging.getLogger()
        for added in root.handlers[:]:
            if added not in previous:
                root.removeHandler(added)
        for kept in previous:
            if kept not in root.handlers:
                root.addHandler(kept)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    text = stream.getvalue().strip()
    if json_lines:
        assert json.loads(text)["request_id"] == "cfg-1"
    else:
        assert text.endswith("WARNING tests.observability.config: hello")
