"""SQL time counted per service, and the gateway's choice of a request ID."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from common import metrics
from gateway import request_ids


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_sql_statements_and_their_seconds_are_counted_per_service() -> None:
    engine = create_engine("sqlite://")
    metrics.time_sql(engine, "unit_sql")
    metrics.time_sql(engine, "unit_sql")  # twice is once
    with engine.connect() as connection:
        for _ in range(3):
            connection.execute(text("SELECT 1"))
        with pytest.raises(OperationalError):
            connection.execute(text("SELECT * FROM no_such_table"))
        connection.execute(text("SELECT 2"))
        assert connection.info[metrics._TIMED] == []  # a failed statement leaves nothing
    assert sample("portal_db_queries_total", service="unit_sql") == 4
    assert sample("portal_db_seconds_total", service="unit_sql") > 0


def test_a_safe_client_id_is_kept_and_the_same_all_request_long() -> None:
    environ = {"HTTP_X_REQUEST_ID": "client-7f3a:retry/2"}
    assert request_ids.take(environ) == "client-7f3a:retry/2"
    assert request_ids.context_data(environ) == {"request_id": "client-7f3a:retry/2"}


@pytest.mark.parametrize("given", [None, "", "x" * 129, "two words", "new\nline", "<script>"])
def test_an_unsafe_or_missing_id_is_replaced_by_a_new_one(given) -> None:
    environ = {} if given is None else {"HTTP_X_REQUEST_ID": given}
    made = request_ids.take(environ)
    assert made != given and len(made) == 32
    assert request_ids.take(environ) == made
    assert request_ids.take({}) != made
