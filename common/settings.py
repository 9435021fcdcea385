"""Settings with one name everywhere: nameko config first, then the environment, then a default.

`nameko run --config config.yaml` fills `nameko.config` from the environment, and tests
patch it per container, so reading through `nameko.config` keeps both paths honest.
"""

from __future__ import annotations

import os
from pathlib import Path

from nameko import config as nameko_config

DEFAULT_AMQP_URI = "amqp://guest:guest@localhost:5672/"
# folders and files of state (databases, keys, mail): the owner alone reads them
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def get(key: str, default: str | None = None) -> str | None:
    """Return the setting `key`, or `default` when neither config nor environment has it."""
    value = nameko_config.get(key)
    if value in (None, ""):
        value = os.environ.get(key)
    if value in (None, ""):
        return default
    return str(value)


def get_int(key: str, default: int) -> int:
    value = get(key)
    return default if value is None else int(value)


def get_float(key: str, default: float) -> float:
    value = get(key)
    return default if value is None else float(value)


def var_dir() -> Path:
    """The folder for embedded databases, generated keys and `.eml` mail; created on demand.

    Created 0700 whatever the umask (mkdir's mode is only ever narrowed by it): what it holds
    is for the services' own user. A folder that already exists is left as its owner set it.
    """
    path = Path(get("VAR_DIR", "var"))
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    return path


def amqp_uri() -> str:
    return get("AMQP_URI", DEFAULT_AMQP_URI)


def database_url(service_name: str) -> str:
    """`<SERVICE>_DATABASE_URL`, defaulting to an SQLite file under `var/`."""
    url = get(f"{service_name.upper()}_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{var_dir() / (service_name + '.db')}"


def portal_url() -> str:
    return get("PORTAL_URL", "http://localhost:8000").rstrip("/")


def payment_provider() -> str:
    """`PAYMENT_PROVIDER`, trimmed and in lower case: `sandbox` (the default) or `stripe`.

    One reading for billing (which charges through it) and the gateway (which tells the
    portal which card form to show), so that ` Stripe ` cannot mean two things."""
    return (get("PAYMENT_PROVIDER", "sandbox") or "sandbox").strip().lower() or "sandbox"


QUEUE_TYPES = ("classic", "quorum")


def queue_type() -> str:
    """`QUEUE_TYPE`: `classic` (default) or `quorum`, for the durable RPC and event queues."""
    value = (get("QUEUE_TYPE", "classic") or "classic").strip().lower()
    if value not in QUEUE_TYPES:
        raise ValueError(f"QUEUE_TYPE must be one of {', '.join(QUEUE_TYPES)}, not {value!r}")
    return value


def durable_queue_arguments() -> dict[str, str]:
    """The arguments of every durable, shared queue (`rpc-<service>`, the event queues).

    Every declaration of one queue must carry the same arguments (RabbitMQ refuses a
    redeclaration that differs), so producers, consumers and `portalctl bus declare` all
    take them from here. Reply and broadcast queues are exclusive or auto-deleted, which
    quorum queues cannot be: they stay classic and never take these.
    """
    return {"x-queue-type": "quorum"} if queue_type() == "quorum" else {}
