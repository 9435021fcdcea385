"""Root of the test suite.

eventlet's monkey patch must come first: nameko's pytest plugin no longer applies it, and
without it psycopg2 and the bus block the hub, so concurrency tests would prove nothing.
"""

import eventlet

eventlet.monkey_patch()

import itertools  # noqa: E402

import pytest  # noqa: E402
from nameko import config as nameko_config  # noqa: E402

from tests.e2e.ui_browser import Browser, missing  # noqa: E402
from tests.support import infra  # noqa: E402
from tests.support.smtp_sink import SmtpSink  # noqa: E402
from tests.support.stripe import stripe_server, stripe_suite  # noqa: E402,F401
from tests.support.suite import provisioned_suite  # noqa: E402

SERVICES = ("auth", "licensing", "billing", "notify")
_VHOSTS = itertools.count(1)


@pytest.fixture(autouse=True)
def _isolated_nameko_config():
    """Every test ends with nameko's global config as it found it.

    Patches started by several fixtures (ours, nameko's container_factory) unwind in fixture
    order, not in the order they began, and could leave one test's settings (a vhost, a
    PORTAL_URL) in the global config for the next tests.
    """
    before = dict(nameko_config)
    yield
    nameko_config.clear()
    nameko_config.update(before)


@pytest.fixture(scope="session")
def run_id() -> str:
    return infra.RUN_ID


@pytest.fixture(scope="session")
def vhost_uri():
    """A RabbitMQ vhost of this test run (deleted at the end)."""
    uri = infra.create_vhost(f"lp-test-{infra.RUN_ID}")
    yield uri
    infra.delete_vhost(f"lp-test-{infra.RUN_ID}")


@pytest.fixture(scope="session")
def databases():
    """A fresh PostgreSQL database per service for this run (dropped at the end)."""
    urls = {name: infra.create_database(f"lp_{infra.RUN_ID}_{name}") for name in SERVICES}
    yield urls
    for name in SERVICES:
        infra.drop_database(f"lp_{infra.RUN_ID}_{name}")


@pytest.fixture(scope="session")
def suite_config(vhost_uri, databases, tmp_path_factory) -> dict:
    """nameko config for running services in this process against the real broker and DBs."""
    var_dir = tmp_path_factory.mktemp("var")
    config = {
        "AMQP_URI": vhost_uri,
        "VAR_DIR": str(var_dir),
        "PORTAL_URL": "http://portal.test",
        "RPC_TIMEOUT": 5,
        "max_workers": 10,
        "SECRET_KEY": "test-secret-key-" + infra.RUN_ID,
    }
    for name, url in databases.items():
        config[f"{name.upper()}_DATABASE_URL"] = url
    return config


@pytest.fixture
def config(suite_config, request):
    """Patch nameko's global config with the suite's and a vhost of this test alone.

    A vhost per test: events a test leaves in a durable queue (producers declare their
    consumers' queues at start-up) must not be delivered to the next test's consumers.
    """
    vhost = f"lp-test-{infra.RUN_ID}-{next(_VHOSTS)}"
    patched = {**suite_config, "AMQP_URI": infra.create_vhost(vhost)}
    try:
        with nameko_config.patch(patched):
            yield patched
    finally:
        infra.delete_vhost(vhost)


# --- the running suite: e2e and security tests ---------------------------------------------


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


@pytest.fixture(scope="session")
def chromium(suite):
    """Headless Chromium on the portal, one for the run: each start costs seconds (skipped
    without Chromium)."""
    reason = missing()
    if reason:
        pytest.skip(reason)
    chromium = Browser(suite.url)
    yield chromium
    chromium.quit()


@pytest.fixture(scope="module")
def browser(chromium):
    """The run's Chromium as a fresh browser for each module: no cookies or storage, desktop
    size, and nothing an earlier module's pages logged left in its console."""
    chromium.reset()
    chromium.console()
    return chromium
