"""End-to-end fixtures: the whole suite as processes, a real SMTP sink, an HTTP client."""

from __future__ import annotations

import pytest

from tests.support.smtp_sink import SmtpSink
from tests.support.suite import provisioned_suite


@pytest.fixture(scope="session")
def smtp_sink(tmp_path_factory):
    sink = SmtpSink(tmp_path_factory.mktemp("smtp"))
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def suite(smtp_sink, tmp_path_factory):
    """auth, licensing, billing, notify and the gateway, each a `nameko run` process."""
    env = {
        "VAR_DIR": str(tmp_path_factory.mktemp("e2e-var")),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_sink.port),
        "MAIL_FROM": "portal@license-portal.test",
        "RPC_TIMEOUT": "3",
        "NOTIFY_POLL_SECONDS": "0.3",
        "NOTIFY_RETRY_BASE_SECONDS": "0.5",
        "LOG_LEVEL": "INFO",
    }
    with provisioned_suite("e2e", env, tmp_path_factory.mktemp("e2e-logs")) as suite:
        yield suite


@pytest.fixture(scope="session")
def api(suite):
    return suite.api
