"""The installation ID: stable, anonymous, different per namespace and machine, overridable."""

from __future__ import annotations

import contextlib
import re
import subprocess

import pytest

from license_client import LicenseClient, installation
from license_client.storage import Store

HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")


def test_derived_id_is_a_sha256_that_depends_on_namespace_and_machine():
    one = installation.derive("cadpro", "4c4c4544-0044-3510-8052-b4c04f4d4e31")
    assert HEX64.match(one)
    assert one == installation.derive("cadpro", "4C4C4544-0044-3510-8052-B4C04F4D4E31\n")
    assert one != installation.derive("otherapp", "4c4c4544-0044-3510-8052-b4c04f4d4e31")
    assert one != installation.derive("cadpro", "4c4c4544-0044-3510-8052-b4c04f4d4e32")
    assert "4c4c4544" not in one


def test_linux_machine_id_files_in_order(monkeypatch, tmp_path):
    first, second = tmp_path / "machine-id", tmp_path / "dbus-machine-id"
    second.write_text("b" * 32 + "\n")
    monkeypatch.setattr(installation.sys, "platform", "linux")
    monkeypatch.setattr(installation, "LINUX_MACHINE_ID_FILES", (str(first), str(second)))
    assert installation.platform_identifier() == "b" * 32
    first.write_text("uninitialized\n")  # systemd's placeholder during the first boot
    assert installation.platform_identifier() == "b" * 32
    first.write_text("a" * 32 + "\n")
    assert installation.platform_identifier() == "a" * 32


def test_macos_reads_the_platform_uuid(monkeypatch):
    output = (
        "+-o J314sAP  <class IOPlatformExpertDevice, id 0x100000209>\n"
        '    "IOPlatformSerialNumber" = "C02XXXXXXX"\n'
        '    "IOPlatformUUID" = "12345678-ABCD-4EF0-9123-456789ABCDEF"\n'
    )
    calls = []

    def fake_run(argv, **kwargs):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, stdout=output, stderr="")

    monkeypatch.setattr(installation.sys, "platform", "darwin")
    monkeypatch.setattr(installation.subprocess, "run", fake_run)
    assert installation.platform_identifier() == "12345678-ABCD-4EF0-9123-456789ABCDEF"
    assert calls[0][0].endswith("ioreg")


def test_windows_reads_the_machine_guid_from_the_64_bit_registry_view(monkeypatch):
    opened = []

    class FakeRegistry:
        HKEY_LOCAL_MACHINE, KEY_READ, KEY_WOW64_64KEY = "HKLM", 0x20019, 0x0100

        @staticmethod
        def OpenKey(root, path, reserved, access):
            opened.append((root, path, access))
            return contextlib.nullcontext("key")

        @staticmethod
        def QueryValueEx(key, name):
            return ("6f1c2d3e-0000-4000-8000-000000000001", 1) if name == "MachineGuid" else None

    monkeypatch.setattr(installation.sys, "platform", "win32")
    monkeypatch.setattr(installation, "winreg", FakeRegistry)
    assert installation.platform_identifier() == "6f1c2d3e-0000-4000-8000-000000000001"
    assert opened == [("HKLM", r"SOFTWARE\Microsoft\Cryptography", 0x20019 | 0x0100)]


def test_windows_without_the_registry_module_finds_nothing(monkeypatch):
    monkeypatch.setattr(installation.sys, "platform", "win32")
    monkeypatch.setattr(installation, "winreg", None)
    assert installation.platform_identifier() is None


def test_fallback_is_a_random_id_kept_in_the_data_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(installation, "platform_identifier", lambda: None)
    store = Store(tmp_path / "data")
    first = installation.installation_id("cadpro", store)
    assert HEX64.match(first)
    assert (tmp_path / "data" / "machine-id").stat().st_mode & 0o777 == 0o600
    assert installation.installation_id("cadpro", Store(tmp_path / "data")) == first
    assert installation.installation_id("cadpro", Store(tmp_path / "elsewhere")) != first


def test_override_by_argument_or_environment(monkeypatch):
    assert installation.installation_id("cadpro", override="my-id-1") == "my-id-1"
    monkeypatch.setenv("LICENSE_CLIENT_INSTALLATION_ID", "from-env")
    assert installation.installation_id("cadpro") == "from-env"
    assert installation.installation_id("cadpro", override="arg-wins") == "arg-wins"


@pytest.mark.parametrize("bad", ["with space", "x" * 129, "tab\there", "é"])
def test_an_override_must_be_printable_ascii(bad):
    with pytest.raises(ValueError):
        installation.installation_id("cadpro", override=bad)


def test_a_client_keeps_the_same_id_across_restarts(tmp_path):
    ids = {
        LicenseClient("http://x", product="cadpro", data_dir=tmp_path).installation_id
        for _ in range(3)
    }
    assert len(ids) == 1
    other_product = LicenseClient("http://x", product="viewer", data_dir=tmp_path)
    assert other_product.installation_id not in ids
