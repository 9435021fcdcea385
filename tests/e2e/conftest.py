"""End-to-end fixtures: the whole suite as processes, a real SMTP sink, an HTTP client."""

from __future__ import annotations

import pytest

from tests.support import infra
from tests.support.smtp_sink import SmtpSink
from tests.support.suite import SERVICES, Suite


@pytest.fixture(scope="session")
def smtp_sink(tmp_path_factory):
    sink = SmtpSink(tmp_path_factory.mktemp("smtp"))
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def suite(smtp_sink, tmp_path_factory):
    """auth, licensing, billing, notify and the gateway, each a `nameko run` process."""
    vhost = f"lp-e2e-{infra.RUN_ID}"
    env = {
        "AMQP_URI": infra.create_vhost(vhost),
        "VAR_DIR": str(tmp_path_factory.mktemp("e2e-var")),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_sink.port),
        "MAIL_FROM": "portal@license-portal.test",
        "RPC_TIMEOUT": "3",
        "NOTIFY_POLL_SECONDS": "0.3",
        "NOTIFY_RETRY_BASE_SECONDS": "0.5",
        "LOG_LEVEL": "INFO",
    }
    names = []
    for service in SERVICES:
        name = f"lp_{infra.RUN_ID}_e2e_{service}"
        env[f"{service.upper()}_DATABASE_URL"] = infra.create_database(name)
        names.append(name)
    suite = Suite(env, tmp_path_factory.mktemp("e2e-logs"))
    try:
        suite.start()
        suite.wait_ready(timeout=90)
        yield suite
    finally:
        suite.stop_all()
        for name in names:
            infra.drop_database(name)
        infra.delete_vhost(vhost)


@pytest.fixture(scope="session")
def api(suite):
    return suite.api
