"""docker-compose.yml and the Dockerfile, checked by reading them (no Docker engine needed).

Each rule is a helper that returns the problems it finds, so a failure names them all; each
helper is run on the real files and on deliberately broken copies, so no rule passes
vacuously.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from nameko.cli.utils.import_services import import_services

from common.bus import DEFAULT_PREFIX, kind_of, user_of

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
INIT_SQL = ROOT / "docker" / "postgres" / "init-databases.sql"
SOURCE_DIRS = ("common", "services", "gateway")

DB_SERVICES = ("auth", "licensing", "billing", "notify")
APP_SERVICES = (*DB_SERVICES, "gateway")
INFRA = ("rabbitmq", "postgres")
GRANT = "bus-grant"  # the one-shot `portalctl bus grant`
NAMEKO_RUN = ["nameko", "run", "--config", "config.yaml"]

# docs/operations.md, and which app service needs what (any service may be given more of them)
DESIGN_VARIABLES = (
    "AMQP_URI",
    *(f"{name.upper()}_DATABASE_URL" for name in DB_SERVICES),
    "GATEWAY_ADDRESS",
    "PORTAL_URL",
    "SMTP_HOST",
    "SMTP_PORT",
    "MAIL_FROM",
    "SECRET_KEY",
    "LICENSE_SIGNING_KEY",
)
NEEDS: dict[str, set[str]] = {
    "auth": {"AMQP_URI", "AUTH_DATABASE_URL", "PORTAL_URL"},  # links in company/reset events
    "licensing": {"AMQP_URI", "LICENSING_DATABASE_URL"},
    "billing": {"AMQP_URI", "BILLING_DATABASE_URL", "MAIL_FROM"},  # the vendor on receipts
    "notify": {
        "AMQP_URI",
        "NOTIFY_DATABASE_URL",
        "PORTAL_URL",
        "SMTP_HOST",
        "SMTP_PORT",
        "MAIL_FROM",
    },
    "gateway": {"AMQP_URI", "GATEWAY_ADDRESS"},
}
# shared through the one volume at VAR_DIR, where they are generated, or set explicitly
SECRETS = ("SECRET_KEY", "LICENSE_SIGNING_KEY")

Compose = dict[str, Any]


# --- reading compose values ---------------------------------------------------------------


def interpolate(value: Any) -> str:
    """A value as compose would see it with nothing set in the host environment."""

    def default(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, rest = match.group("name", "operator", "rest")
        if operator and operator.endswith("-"):
            return rest
        return f"<{name}>"  # `${X}` and `${X:?message}` come from the host: name them

    pattern = r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?])(?P<rest>[^}]*))?\}"
    return re.sub(pattern, default, str(value))


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: interpolate(value) for key, value in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    value = service.get("command") or []
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def published_ports(service: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(host ip, host port, container port) for each of `ports`, short or long syntax."""
    found = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            found.append(
                (
                    str(entry.get("host_ip", "")),
                    str(entry.get("published", "")),
                    int(entry["target"]),
                )
            )
            continue
        parts = interpolate(entry).split("/", 1)[0].rsplit(":", 2)
        host_ip = parts[0] if len(parts) == 3 else ""
        published = parts[-2] if len(parts) >= 2 else ""
        found.append((host_ip, published, int(parts[-1])))
    return found


def one_shot(service: dict[str, Any]) -> bool:
    """Runs to its end and stays down (`restart: "no"`, no healthcheck): others wait for it
    with `service_completed_successfully`."""
    return service.get("restart") in ("no", False) and not service.get("healthcheck")


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """Each dependency and its condition (the short list form has none)."""
    value = service.get("depends_on") or {}
    if isinstance(value, list):
        return dict.fromkeys(value, "")
    return {name: (spec or {}).get("condition", "") for name, spec in value.items()}


def volume_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path → source, for `source:target[:mode]` and the long syntax."""
    mounts = {}
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            mounts[entry["target"]] = entry.get("source", "")
        else:
            source, _, rest = entry.partition(":")
            mounts[rest.split(":", 1)[0]] = source
    return mounts


def source_text() -> str:
    files = [ROOT / "config.yaml"]
    for folder in SOURCE_DIRS:
        files.extend(sorted((ROOT / folder).rglob("*.py")))
    return "\n".join(path.read_text(encoding="utf-8") for path in files)


def code_reads(name: str, text: str) -> bool:
    """Whether the code reads variable `name`: literally, or as `<service>_DATABASE_URL`.

    `settings.database_url("auth")` builds `AUTH_DATABASE_URL` from the service name, so
    those count when the name is built that way and some code asks for that service's URL.
    """
    if re.search(rf"\b{re.escape(name)}\b", text):
        return True
    match = re.fullmatch(r"([A-Z]+)_DATABASE_URL", name)
    if match is None or not re.search(r"\.upper\(\)\}_DATABASE_URL\b", text):
        return False
    service = match.group(1).lower()
    return bool(re.search(rf"(?:Database|database_url)\(\s*[\"']{service}[\"']", text))


# --- the rules ----------------------------------------------------------------------------


def missing_services(compose: Compose) -> list[str]:
    services = compose.get("services") or {}
    problems = [f"no service {name!r}" for name in (*APP_SERVICES, *INFRA) if name not in services]
    if not any("mailpit" in str(spec.get("image", "")) for spec in services.values()):
        problems.append("no mail catcher (axllent/mailpit)")
    return problems


def infrastructure_problems(compose: Compose) -> list[str]:
    services = compose["services"]
    problems = []
    if not str(services["rabbitmq"].get("image", "")).startswith("rabbitmq:3-management"):
        problems.append("rabbitmq is not the rabbitmq:3-management image")
    if 15672 not in [target for _, _, target in published_ports(services["rabbitmq"])]:
        problems.append("the RabbitMQ management UI (15672) is not published")
    if str(services["postgres"].get("image", "")) != "postgres:15":
        problems.append("postgres is not the postgres:15 image")
    mounts = volume_mounts(services["postgres"])
    init = [source for target, source in mounts.items() if "docker-entrypoint-initdb.d" in target]
    if not init or (ROOT / init[0]).resolve() != INIT_SQL:
        problems.append(f"postgres does not run {INIT_SQL.relative_to(ROOT)} at init")
    mail = [spec for spec in services.values() if "mailpit" in str(spec.get("image", ""))]
    if mail and 8025 not in [target for _, _, target in published_ports(mail[0])]:
        problems.append("the mail catcher's web UI (8025) is not published")
    return problems


def command_problems(compose: Compose, name: str) -> list[str]:
    """`nameko run --config config.yaml <module>`, whose one service is called `name`."""
    argv = command(compose["services"][name])
    if argv[:4] != NAMEKO_RUN or len(argv) != 5:
        return [f"{name}: command {argv} is not `{' '.join(NAMEKO_RUN)} <module>`"]
    module = argv[4]
    path = ROOT / Path(*module.split("."))
    if not (path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()):
        return [f"{name}: module {module} is not in the repository"]
    try:
        found = import_services(module)
    except ValueError as exc:
        return [f"{name}: {module}: {exc}"]
    names = sorted(getattr(cls, "name", cls.__name__) for cls in found)
    if names != [name]:
        return [f"{name}: {module} runs the nameko services {names}, not [{name!r}]"]
    return []


def unread_variables(compose: Compose, text: str) -> list[str]:
    return [
        f"{name}: sets {key}, which no code under {', '.join(SOURCE_DIRS)} or config.yaml reads"
        for name in APP_SERVICES
        for key in environment(compose["services"][name])
        if not code_reads(key, text)
    ]


def missing_variables(compose: Compose) -> list[str]:
    problems = []
    for name in APP_SERVICES:
        env = environment(compose["services"][name])
        problems += [f"{name}: {key} is not set" for key in sorted(NEEDS[name] - set(env))]
        problems += [
            f"{name}: {key} is set but empty" for key in sorted(NEEDS[name]) if env.get(key) == ""
        ]
        # one database per service: nobody is handed another's
        problems += [
            f"{name}: is given {key}"
            for key in env
            if key.endswith("_DATABASE_URL") and key != f"{name.upper()}_DATABASE_URL"
        ]
    return problems


def database_problems(compose: Compose, init_sql: str) -> list[str]:
    created = set(re.findall(r'CREATE DATABASE "?(\w+)"?', init_sql, flags=re.IGNORECASE))
    roles = set(re.findall(r'CREATE ROLE "?(\w+)"?', init_sql, flags=re.IGNORECASE))
    problems = []
    for name in DB_SERVICES:
        url = environment(compose["services"][name]).get(f"{name.upper()}_DATABASE_URL", "")
        parts = urlparse(url)
        database = parts.path.lstrip("/")
        if parts.scheme not in ("postgresql", "postgresql+psycopg2"):
            problems.append(f"{name}: database URL {url!r} is not postgresql://")
        elif parts.hostname != "postgres":
            problems.append(f"{name}: database URL does not point at the postgres service")
        elif database not in created:
            problems.append(f"{name}: database {database!r} is not created by the init script")
        elif parts.username not in roles:
            problems.append(f"{name}: role {parts.username!r} is not created by the init script")
    urls = [
        environment(compose["services"][name]).get(f"{name.upper()}_DATABASE_URL")
        for name in DB_SERVICES
    ]
    if len(set(urls)) < len(urls):
        problems.append("two services share a database URL")
    return problems


def dockerfile_var_dir(dockerfile: str) -> str | None:
    match = re.search(r"\bVAR_DIR=(\S+)", dockerfile)
    return match.group(1) if match else None


def key_volume(compose: Compose, name: str, dockerfile: str) -> str | None:
    """The source of what `name` mounts at its VAR_DIR, where it generates missing keys."""
    service = compose["services"][name]
    var_dir = environment(service).get("VAR_DIR") or dockerfile_var_dir(dockerfile)
    return volume_mounts(service).get(var_dir or "")


def secret_problems(compose: Compose, dockerfile: str) -> list[str]:
    """Both keys set on every back-end service, or they all share one named volume at VAR_DIR;
    the gateway's SECRET_KEY (CSRF) set, or in a named volume its instances share."""
    problems = []
    declared = set(compose.get("volumes") or {})
    shared = set()
    for name in APP_SERVICES:
        service = compose["services"][name]
        env = environment(service)
        needed = ("SECRET_KEY",) if name == "gateway" else SECRETS
        if all(env.get(key) for key in needed):
            continue
        var_dir = env.get("VAR_DIR") or dockerfile_var_dir(dockerfile)
        source = volume_mounts(service).get(var_dir or "")
        if not var_dir or source is None:
            problems.append(f"{name}: neither {'/'.join(SECRETS)} nor a volume at VAR_DIR")
        elif source not in declared:
            problems.append(f"{name}: {var_dir} is {source!r}, not a named volume of the file")
        elif name != "gateway":
            shared.add(source)
    if len(shared) > 1:
        problems.append(f"the services keep their generated keys in different volumes: {shared}")
    return problems


def gateway_key_problems(compose: Compose, dockerfile: str) -> list[str]:
    """The internet-facing gateway holds no back-end key: not the license signing key, not
    the SECRET_KEY of the activation passwords, not the volume where they are generated."""
    gateway = compose["services"]["gateway"]
    env = environment(gateway)
    problems = [
        f"gateway: is given {key}"
        for key in ("LICENSE_SIGNING_KEY", "LICENSE_SIGNING_KEYS_RETIRED")
        if key in env
    ]
    for name in DB_SERVICES:
        source = key_volume(compose, name, dockerfile)
        if source and source in volume_mounts(gateway).values():
            problems.append(f"gateway: mounts {source!r}, where {name} keeps its keys")
        theirs = environment(compose["services"][name]).get("SECRET_KEY")
        if theirs and env.get("SECRET_KEY") == theirs:
            problems.append(f"gateway: shares {name}'s SECRET_KEY")
    return problems


def compose_variables(value: str) -> set[str]:
    """The host variables `value` reads (`${NAME...}`), so two values set apart can be told."""
    return set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", value))


def raw_environment(service: dict[str, Any]) -> dict[str, str]:
    """`environment` before interpolation."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: str(value) for key, value in env.items()}


def role_password_problems(compose: Compose, init_sql: str) -> list[str]:
    """Each database role has a password of its own: a variable of its own in compose, a
    distinct default, and the init script gives the role what the service's URL sends."""
    services = compose["services"]
    psql_env = dict(re.findall(r"^\\getenv\s+(\w+)\s+(\w+)", init_sql, flags=re.MULTILINE))
    role_var = dict(
        re.findall(
            r'CREATE ROLE "?(\w+)"?[^;]*PASSWORD\s+:\'(\w+)\'', init_sql, flags=re.IGNORECASE
        )
    )
    postgres_env = raw_environment(services["postgres"])
    problems = []
    seen: dict[str, str] = {}
    read_by: dict[str, str] = {}
    for name in DB_SERVICES:
        key = f"{name.upper()}_DATABASE_URL"
        raw = raw_environment(services[name]).get(key, "")
        parts = urlparse(environment(services[name]).get(key, ""))
        if not parts.password:
            problems.append(f"{name}: the database URL has no password")
            continue
        if parts.password in seen:
            problems.append(f"{name}: has the database password of {seen[parts.password]}")
        seen.setdefault(parts.password, name)
        userinfo = raw.partition("://")[2].rpartition("@")[0]
        for variable in sorted(compose_variables(userinfo)):
            if variable in read_by:
                problems.append(f"{name}: reads {variable}, the password of {read_by[variable]}")
            read_by.setdefault(variable, name)
        env_name = psql_env.get(role_var.get(parts.username or "", ""))
        given = postgres_env.get(env_name or "", "")
        if env_name is None:
            problems.append(f"{name}: the init script sets role {parts.username!r} no password")
        elif (interpolate(given), compose_variables(given)) != (
            parts.password,
            compose_variables(userinfo),
        ):
            problems.append(
                f"{name}: postgres's {env_name} (the role's password) is not the URL's password"
            )
    if len(set(role_var.values())) < len(role_var):
        problems.append("the init script gives two roles the same password variable")
    return problems


def port_problems(compose: Compose) -> list[str]:
    services = compose["services"]
    problems = []
    address = environment(services["gateway"]).get("GATEWAY_ADDRESS", "")
    host, _, port = address.rpartition(":")
    if host != "0.0.0.0":  # noqa: S104 - the address a container must listen on
        problems.append(f"gateway: GATEWAY_ADDRESS {address!r} does not listen on 0.0.0.0")
    targets = [target for _, _, target in published_ports(services["gateway"])]
    if not port.isdigit() or targets != [int(port)]:
        problems.append(f"gateway: publishes {targets}, but GATEWAY_ADDRESS is {address!r}")
    for name in DB_SERVICES:
        if services[name].get("ports"):
            problems.append(f"{name}: publishes host ports, so it cannot be scaled")
    for name in APP_SERVICES:
        if "container_name" in services[name]:
            problems.append(f"{name}: sets container_name, so it cannot be scaled")
    return problems


def health_problems(compose: Compose) -> list[str]:
    services = compose["services"]
    problems = []
    for name, service in services.items():
        test = (service.get("healthcheck") or {}).get("test")
        # a one-shot ends, and a tool (a profile) runs on demand: neither has health to check
        checked = not (one_shot(service) or service.get("profiles"))
        if checked and (not test or service["healthcheck"].get("disable")):
            problems.append(f"{name}: no healthcheck")
        for dependency, condition in depends_on(service).items():
            if one_shot(services.get(dependency, {})):
                if condition != "service_completed_successfully":
                    problems.append(f"{name}: does not wait for {dependency} to finish")
                continue
            if condition != "service_healthy":
                problems.append(f"{name}: depends on {dependency} without service_healthy")
            if not (services.get(dependency, {}).get("healthcheck") or {}).get("test"):
                problems.append(f"{name}: waits for {dependency}, which has no healthcheck")
    for name in APP_SERVICES:
        test = (services[name].get("healthcheck") or {}).get("test")
        if test != ["CMD", "python", "-m", "common.healthcheck", name]:
            problems.append(f"{name}: healthcheck {test} is not `python -m common.healthcheck`")
        needed = {"rabbitmq"} | ({"postgres"} if name in DB_SERVICES else set())
        missing = needed - set(depends_on(services[name]))
        problems += [f"{name}: does not wait for {dependency}" for dependency in sorted(missing)]
    return problems


def _host_variables(value: str) -> set[str]:
    return set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", value))


def bus_user_problems(compose: Compose) -> list[str]:
    """A one-shot `portalctl bus grant` run as RabbitMQ's administrator, and every app service
    (and tool) on the bus as a user of its own kind, with the password grant gives that user
    (common/bus.py), started once grant has finished."""
    services = compose["services"]
    grant = services.get(GRANT)
    if grant is None:
        return [f"no {GRANT} service (`portalctl bus grant`)"]
    problems = []
    argv = command(grant)
    if argv[:3] != ["portalctl", "bus", "grant"]:
        problems.append(f"{GRANT}: command {argv} is not `portalctl bus grant`")
    if not one_shot(grant):
        problems.append(f'{GRANT}: not a one-shot (restart: "no", no healthcheck)')
    prefix = argv[argv.index("--prefix") + 1] if "--prefix" in argv[:-1] else DEFAULT_PREFIX
    grant_env = environment(grant)
    raw_grant_env = {key: str(value) for key, value in (grant.get("environment") or {}).items()}
    admin = user_of(grant_env.get("AMQP_URI"))
    if admin is None or kind_of(admin) is not None:
        problems.append(f"{GRANT}: runs as {admin!r}, not as the broker's administrator")
    on_bus = {name: name for name in APP_SERVICES}
    on_bus |= {
        name: "staff"
        for name, service in services.items()
        if service.get("profiles") and "AMQP_URI" in environment(service)
    }
    passwords: dict[str, str] = {}
    for name, kind in on_bus.items():
        raw_uri = str((services[name].get("environment") or {}).get("AMQP_URI", ""))
        uri = environment(services[name]).get("AMQP_URI", "")
        user = user_of(uri)
        if user != f"{prefix}{kind}":
            problems.append(f"{name}: is on the bus as {user!r}, not {prefix}{kind}")
            continue
        password = urlparse(uri).password or ""
        variable = f"{kind.upper()}_BUS_PASSWORD"
        userinfo = raw_uri.partition("://")[2].rpartition("@")[0]
        if (password, _host_variables(userinfo)) != (
            grant_env.get(variable),
            _host_variables(raw_grant_env.get(variable, "")),
        ):
            problems.append(f"{name}: its bus password is not the {variable} {GRANT} sets")
        if passwords.setdefault(password, kind) != kind:
            problems.append(f"{name}: has the bus password of {passwords[password]}")
        if depends_on(services[name]).get(GRANT) != "service_completed_successfully":
            problems.append(f"{name}: does not wait for {GRANT} to finish")
    return problems


def dockerfile_problems(dockerfile: str) -> list[str]:
    lines = [line.strip() for line in dockerfile.splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    problems = []
    base = next((line.split()[1] for line in instructions if line.upper().startswith("FROM ")), "")
    if not re.fullmatch(r"python:3\.11(?:[-.].*)?", base):
        problems.append(f"base image {base!r} is not Python 3.11")
    users = [line.split()[1] for line in instructions if line.upper().startswith("USER ")]
    if not users or users[-1] in ("root", "0") or users[-1].startswith(("root:", "0:")):
        problems.append("the image runs as root")
    if not re.search(r"pip install\b[^\n]*\s\.(\s|$)", dockerfile):
        problems.append("the project is not pip-installed from pyproject.toml (`pip install .`)")
    if dockerfile_var_dir(dockerfile) != "/data":
        problems.append("VAR_DIR is not /data")
    return problems


# --- on the real files ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> Compose:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return DOCKERFILE.read_text(encoding="utf-8")


def test_every_service_of_the_design_and_the_infrastructure_is_there(compose: Compose) -> None:
    assert missing_services(compose) == []
    assert infrastructure_problems(compose) == []


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_app_service_runs_its_own_nameko_service(compose: Compose, name: str) -> None:
    assert command_problems(compose, name) == []


def test_every_variable_set_is_one_the_code_reads(compose: Compose) -> None:
    assert unread_variables(compose, source_text()) == []


def test_every_design_variable_reaches_the_services_that_need_it(compose: Compose) -> None:
    assert missing_variables(compose) == []


def test_each_service_has_its_own_database_created_at_init(compose: Compose) -> None:
    assert database_problems(compose, INIT_SQL.read_text(encoding="utf-8")) == []


def test_generated_secrets_are_shared_by_the_back_end_services(
    compose: Compose, dockerfile: str
) -> None:
    assert secret_problems(compose, dockerfile) == []


def test_the_gateway_holds_no_back_end_key(compose: Compose, dockerfile: str) -> None:
    assert gateway_key_problems(compose, dockerfile) == []


def test_each_database_role_has_its_own_password(compose: Compose) -> None:
    assert role_password_problems(compose, INIT_SQL.read_text(encoding="utf-8")) == []


def test_only_the_gateway_publishes_a_port_and_services_can_scale(compose: Compose) -> None:
    assert port_problems(compose) == []


def test_healthchecks_and_start_order(compose: Compose) -> None:
    assert health_problems(compose) == []


def test_each_process_is_on_the_bus_as_its_own_kind(compose: Compose) -> None:
    assert bus_user_problems(compose) == []


def test_the_dockerfile(dockerfile: str) -> None:
    assert dockerfile_problems(dockerfile) == []


# --- each rule can fail ---------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[Compose], None]:
    """A mutation that sets `services.<path>` (dotted) to `value`; None deletes it."""

    def mutate(compose: Compose) -> None:
        *parents, last = path.split(".")
        node = compose["services"]
        for key in parents:
            node = node[key]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value

    return mutate


def _all(*mutations: Callable[[Compose], None]) -> Callable[[Compose], None]:
    """One mutation made of several."""

    def mutate(compose: Compose) -> None:
        for each in mutations:
            each(compose)

    return mutate


BROKEN: list[tuple[str, Callable[[Compose], None], Callable[[Compose], list[str]]]] = [
    ("no notify", _set("notify", None), missing_services),
    ("no mail catcher", _set("mailpit", None), missing_services),
    ("rabbitmq without UI", _set("rabbitmq.ports", []), infrastructure_problems),
    ("no init script", _set("postgres.volumes", []), infrastructure_problems),
    (
        "licensing runs billing",
        _set("licensing.command", [*NAMEKO_RUN, "services.billing.service"]),
        lambda c: command_problems(c, "licensing"),
    ),
    (
        "a module that does not exist",
        _set("auth.command", [*NAMEKO_RUN, "services.nope.service"]),
        lambda c: command_problems(c, "auth"),
    ),
    (
        "without the config",
        _set("gateway.command", "nameko run gateway.service"),
        lambda c: command_problems(c, "gateway"),
    ),
    (
        "a variable nobody reads",
        _set("auth.environment.AUTH_DB_URL", "postgresql://x"),
        lambda c: unread_variables(c, source_text()),
    ),
    (
        "a database URL for a service that has none",
        _set("gateway.environment.GATEWAY_DATABASE_URL", "postgresql://x"),
        lambda c: unread_variables(c, source_text()),
    ),
    ("notify without SMTP", _set("notify.environment.SMTP_HOST", None), missing_variables),
    ("gateway without its address", _set("gateway.environment", {}), missing_variables),
    (
        "billing given auth's database",
        _set("billing.environment.AUTH_DATABASE_URL", "postgresql://x"),
        missing_variables,
    ),
    (
        "a database the init script does not create",
        _set("auth.environment.AUTH_DATABASE_URL", "postgresql://auth:p@postgres:5432/other"),
        lambda c: database_problems(c, INIT_SQL.read_text(encoding="utf-8")),
    ),
    (
        "sqlite in compose",
        _set("notify.environment.NOTIFY_DATABASE_URL", "sqlite:///data/notify.db"),
        lambda c: database_problems(c, INIT_SQL.read_text(encoding="utf-8")),
    ),
    (
        "no shared volume",
        _set("licensing.volumes", []),
        lambda c: secret_problems(c, DOCKERFILE.read_text(encoding="utf-8")),
    ),
    (
        "a volume of its own",
        _set("billing.volumes", ["billing-keys:/data"]),
        lambda c: secret_problems(c, DOCKERFILE.read_text(encoding="utf-8")),
    ),
    (
        "a gateway without a CSRF key its instances share",
        _set("gateway.volumes", []),
        lambda c: secret_problems(c, DOCKERFILE.read_text(encoding="utf-8")),
    ),
    (
        "the gateway mounts the back-end's keys",
        _set("gateway.volumes", ["portal-data:/data"]),
        lambda c: gateway_key_problems(c, DOCKERFILE.read_text(encoding="utf-8")),
    ),
    (
        "the gateway mounts them elsewhere",
        _set("gateway.volumes", ["gateway-data:/data", "portal-data:/backend:ro"]),
        lambda c: gateway_key_problems(c, DOCKERFILE.read_text(encoding="utf-8")),
    ),
    (
        "the gateway given the signing key",
        _set("gateway.environment.LICENSE_SIGNING_KEY", "${LICENSE_SIGNING_KEY}"),
        lambda c: gateway_key_problems(c, DOCKERFILE.read_text(encoding="utf-8")),
    ),
    (
        "the gateway given licensing's SECRET_KEY",
        _all(
            _set("licensing.environment.SECRET_KEY", "${SECRET_KEY}"),
            _set("gateway.environment.SECRET_KEY", "${SECRET_KEY}"),
        ),
        lambda c: gateway_key_problems(c, DOCKERFILE.read_text(encoding="utf-8")),
    ),
    (
        "two roles share a password",
        _set(
            "billing.environment.BILLING_DATABASE_URL",
            "postgresql://billing:${AUTH_DB_PASSWORD:-x}@postgres:5432/billing",
        ),
        lambda c: role_password_problems(c, INIT_SQL.read_text(encoding="utf-8")),
    ),
    (
        "two roles with the same default password",
        _all(
            *(
                _set(
                    f"{name}.environment.{name.upper()}_DATABASE_URL",
                    f"postgresql://{name}:${{{name.upper()}_DB_PASSWORD:-same}}@postgres/{name}",
                )
                for name in ("auth", "notify")
            ),
            _set("postgres.environment.AUTH_DB_PASSWORD", "${AUTH_DB_PASSWORD:-same}"),
            _set("postgres.environment.NOTIFY_DB_PASSWORD", "${NOTIFY_DB_PASSWORD:-same}"),
        ),
        lambda c: role_password_problems(c, INIT_SQL.read_text(encoding="utf-8")),
    ),
    (
        "a URL without a password",
        _set("auth.environment.AUTH_DATABASE_URL", "postgresql://auth@postgres:5432/auth"),
        lambda c: role_password_problems(c, INIT_SQL.read_text(encoding="utf-8")),
    ),
    (
        "postgres gives the role another password",
        _set("postgres.environment.NOTIFY_DB_PASSWORD", "${NOTIFY_DB_PASSWORD:-other}"),
        lambda c: role_password_problems(c, INIT_SQL.read_text(encoding="utf-8")),
    ),
    ("a licensing port", _set("licensing.ports", ["9000:9000"]), port_problems),
    ("a container name", _set("licensing.container_name", "licensing"), port_problems),
    (
        "the gateway on loopback",
        _set("gateway.environment.GATEWAY_ADDRESS", "127.0.0.1:8000"),
        port_problems,
    ),
    ("another gateway port", _set("gateway.ports", ["8000:9000"]), port_problems),
    ("no healthcheck", _set("auth.healthcheck", None), health_problems),
    (
        "a wrong healthcheck",
        _set("billing.healthcheck", {"test": ["CMD", "true"]}),
        health_problems,
    ),
    (
        "service_started",
        _set("auth.depends_on.postgres.condition", "service_started"),
        health_problems,
    ),
    ("short depends_on", _set("notify.depends_on", ["rabbitmq", "postgres"]), health_problems),
    (
        "no wait for postgres",
        _set("licensing.depends_on", {"rabbitmq": {"condition": "service_healthy"}}),
        health_problems,
    ),
    ("waits on a service without healthcheck", _set("rabbitmq.healthcheck", None), health_problems),
    (
        "waits for grant to be healthy",
        _set(f"auth.depends_on.{GRANT}.condition", "service_healthy"),
        health_problems,
    ),
    ("a one-shot that restarts", _set(f"{GRANT}.restart", "on-failure"), health_problems),
    ("no bus grant", _set(GRANT, None), bus_user_problems),
    (
        "grant that grants nothing",
        _set(f"{GRANT}.command", ["portalctl", "bus", "declare"]),
        bus_user_problems,
    ),
    (
        "grant as a kind's user",
        _set(f"{GRANT}.environment.AMQP_URI", "amqp://portal-staff:x@rabbitmq:5672/"),
        bus_user_problems,
    ),
    (
        "the gateway as the administrator",
        _set("gateway.environment.AMQP_URI", "amqp://portal:${RABBITMQ_PASSWORD:-portal}@r/"),
        bus_user_problems,
    ),
    (
        "the gateway as billing",
        _set(
            "gateway.environment.AMQP_URI",
            "amqp://portal-billing:${BILLING_BUS_PASSWORD:-billing-bus-dev-password}@rabbitmq/",
        ),
        bus_user_problems,
    ),
    (
        "a password grant does not set",
        _set("licensing.environment.AMQP_URI", "amqp://portal-licensing:other@rabbitmq:5672/"),
        bus_user_problems,
    ),
    (
        "a password from another variable",
        _set(
            "notify.environment.AMQP_URI",
            "amqp://portal-notify:${AUTH_BUS_PASSWORD:-notify-bus-dev-password}@rabbitmq/",
        ),
        bus_user_problems,
    ),
    (
        "two kinds with one password",
        _all(
            _set(f"{GRANT}.environment.AUTH_BUS_PASSWORD", "same"),
            _set(f"{GRANT}.environment.NOTIFY_BUS_PASSWORD", "same"),
            _set("auth.environment.AMQP_URI", "amqp://portal-auth:same@rabbitmq/"),
            _set("notify.environment.AMQP_URI", "amqp://portal-notify:same@rabbitmq/"),
        ),
        bus_user_problems,
    ),
    (
        "a service that does not wait for grant",
        _set("gateway.depends_on", {"rabbitmq": {"condition": "service_healthy"}}),
        bus_user_problems,
    ),
    (
        "the staff tool as the gateway",
        _set(
            "portalctl.environment.AMQP_URI",
            "amqp://portal-gateway:${GATEWAY_BUS_PASSWORD:-gateway-bus-dev-password}@rabbitmq/",
        ),
        bus_user_problems,
    ),
]


@pytest.mark.parametrize(
    ("mutate", "rule"), [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN]
)
def test_each_rule_catches_a_broken_compose_file(
    compose: Compose,
    mutate: Callable[[Compose], None],
    rule: Callable[[Compose], list[str]],
) -> None:
    assert rule(compose) == [], "the real file must pass before a broken copy can fail"
    # through JSON: the anchors' shared objects become separate, so a mutation hits one service
    broken = json.loads(json.dumps(compose))
    mutate(broken)
    assert rule(broken) != []


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("FROM python:3.11-slim", "FROM python:3.12-slim"),
        ("USER portal", "USER root"),
        ("USER portal", ""),
        ("pip install --no-deps .", "pip install --no-deps -e /app"),
        ("VAR_DIR=/data", "VAR_DIR=/var/lib/portal"),
    ],
)
def test_the_dockerfile_rules_can_fail(dockerfile: str, before: str, after: str) -> None:
    assert before in dockerfile
    assert dockerfile_problems(dockerfile.replace(before, after)) != []


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("PASSWORD :'billing_password'", "PASSWORD :'auth_password'"),
        ("\\getenv notify_password NOTIFY_DB_PASSWORD", ""),
        ("\\getenv licensing_password LICENSING_DB_PASSWORD", "\\getenv licensing_password X"),
    ],
)
def test_the_role_password_rule_reads_the_init_script(
    compose: Compose, before: str, after: str
) -> None:
    init_sql = INIT_SQL.read_text(encoding="utf-8")
    assert before in init_sql
    assert role_password_problems(compose, init_sql.replace(before, after)) != []


def test_the_needs_table_covers_every_design_variable() -> None:
    assert set().union(*NEEDS.values()) | set(SECRETS) == set(DESIGN_VARIABLES)


def test_reading_helpers() -> None:
    assert interpolate("${A:-x}/${B-y}/${C:?set C}/$${D}") == "x/y/<C>/${D}"
    assert published_ports({"ports": ["8000", "1:2", "127.0.0.1:3:4/tcp", {"target": 5}]}) == [
        ("", "", 8000),
        ("", "1", 2),
        ("127.0.0.1", "3", 4),
        ("", "", 5),
    ]
    assert environment({"environment": ["A=1", "B"]}) == {"A": "1", "B": ""}
    assert depends_on({"depends_on": ["x"]}) == {"x": ""}
    text = 'f"{service_name.upper()}_DATABASE_URL"\nDatabase("auth", here)\nMAIL_FROM'
    assert code_reads("MAIL_FROM", text)
    assert code_reads("AUTH_DATABASE_URL", text)
    assert not code_reads("BILLING_DATABASE_URL", text)
    assert not code_reads("MAIL", text)
