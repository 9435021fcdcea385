"""Real infrastructure for tests: a RabbitMQ vhost and PostgreSQL databases per run."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from urllib.parse import quote, urlparse

import psycopg2
import requests

RUN_ID = secrets.token_hex(4)
AMQP_URI = os.environ.get("TEST_AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
RABBIT_API = os.environ.get("TEST_RABBIT_API_URI", "http://guest:guest@127.0.0.1:15672")
PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _amqp_user() -> str:
    return urlparse(AMQP_URI).username or "guest"


def vhost_uri(vhost: str) -> str:
    parts = urlparse(AMQP_URI)
    return f"{parts.scheme}://{parts.netloc}/{quote(vhost, safe='')}"


def create_vhost(vhost: str) -> str:
    """Create `vhost` through the management API, or `rabbitmqctl` where that is off."""
    api = urlparse(RABBIT_API)
    base = f"{api.scheme}://{api.hostname}:{api.port}/api"
    auth = (api.username or "guest", api.password or "guest")
    name = quote(vhost, safe="")
    try:
        requests.put(f"{base}/vhosts/{name}", auth=auth, timeout=10).raise_for_status()
        requests.put(
            f"{base}/permissions/{name}/{_amqp_user()}",
            json={"configure": ".*", "write": ".*", "read": ".*"},
            auth=auth,
            timeout=10,
        ).raise_for_status()
    except requests.RequestException:
        ctl = shutil.which("rabbitmqctl")
        if ctl is None:
            raise RuntimeError(
                "cannot create a RabbitMQ vhost: enable the management plugin "
                "(rabbitmq-plugins enable rabbitmq_management) or put rabbitmqctl on PATH"
            ) from None
        subprocess.run([ctl, "add_vhost", vhost], check=True, capture_output=True)
        subprocess.run(
            [ctl, "set_permissions", "-p", vhost, _amqp_user(), ".*", ".*", ".*"],
            check=True,
            capture_output=True,
        )
    return vhost_uri(vhost)


def delete_vhost(vhost: str) -> None:
    api = urlparse(RABBIT_API)
    base = f"{api.scheme}://{api.hostname}:{api.port}/api"
    try:
        requests.delete(
            f"{base}/vhosts/{quote(vhost, safe='')}",
            auth=(api.username or "guest", api.password or "guest"),
            timeout=10,
        )
    except requests.RequestException:
        ctl = shutil.which("rabbitmqctl")
        if ctl:
            subprocess.run([ctl, "delete_vhost", vhost], capture_output=True)


def _admin():
    connection = psycopg2.connect(PG_ADMIN_URL)
    connection.autocommit = True
    return connection


def database_url(name: str) -> str:
    parts = urlparse(PG_ADMIN_URL)
    return parts._replace(path=f"/{name}").geturl()


def create_database(name: str) -> str:
    connection = _admin()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()
    return database_url(name)


def drop_database(name: str) -> None:
    connection = _admin()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        connection.close()
