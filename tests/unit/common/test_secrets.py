"""Generated secrets: created once, private, and the same for every process that asks."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from eventlet.event import Event
from eventlet.greenpool import GreenPool
from nameko import config

from common.secrets import load_or_create

ENV_KEY = "LP_TEST_SECRET"


@pytest.fixture
def var_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    monkeypatch.delenv(ENV_KEY, raising=False)
    return tmp_path


def test_creates_the_secret_once_with_mode_0600(var_dir: Path) -> None:
    first = load_or_create("test_secret", ENV_KEY)
    assert len(first) >= 32
    path = var_dir / "test_secret"
    assert path.read_bytes() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create("test_secret", ENV_KEY) == first
    assert sorted(os.listdir(var_dir)) == ["test_secret"]  # no temporary files left behind


def test_each_name_is_its_own_secret(var_dir: Path) -> None:
    assert load_or_create("one", ENV_KEY) != load_or_create("two", ENV_KEY)


def test_concurrent_callers_all_get_the_winners_value(var_dir: Path) -> None:
    callers = 6
    made: list[bytes] = []
    all_made = Event()

    def make() -> bytes:
        value = f"value-{len(made)}".encode()
        made.append(value)
        if len(made) == callers:
            all_made.send(True)
        # nobody writes before every caller has generated: they really race for the file
        assert all_made.wait(timeout=10), f"only {len(made)} callers generated a value"
        return value

    pool = GreenPool()
    results = list(pool.imap(lambda _: load_or_create("raced", ENV_KEY, make), range(callers)))
    assert len(made) == callers
    assert len(set(results)) == 1
    assert (var_dir / "raced").read_bytes() == results[0]


def test_the_first_caller_gets_what_later_callers_read(var_dir: Path) -> None:
    # e.g. a PEM key ends with a newline; a reader strips, so the creator must agree
    first = load_or_create("pem", ENV_KEY, lambda: b"-----BEGIN KEY-----\nabc\n-----END KEY-----\n")
    assert load_or_create("pem", ENV_KEY) == first


def test_an_empty_secret_file_is_refused_not_used(var_dir: Path) -> None:
    # the file only ever appears complete, so an empty one was damaged: never an empty key
    (var_dir / "damaged").touch()
    with pytest.raises(RuntimeError, match="is empty"):
        load_or_create("damaged", ENV_KEY)


def test_the_environment_wins_and_nothing_is_written(var_dir: Path, monkeypatch) -> None:
    (var_dir / "configured").write_bytes(b"from-the-file")
    monkeypatch.setenv(ENV_KEY, "from-the-environment")
    assert load_or_create("configured", ENV_KEY) == b"from-the-environment"
    assert load_or_create("unconfigured", ENV_KEY) == b"from-the-environment"
    assert not (var_dir / "unconfigured").exists()


def test_nameko_config_counts_as_configuration(var_dir: Path) -> None:
    with config.patch({ENV_KEY: "from-nameko-config"}):
        assert load_or_create("configured", ENV_KEY) == b"from-nameko-config"
    assert not (var_dir / "configured").exists()
