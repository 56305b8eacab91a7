"""The RAUC installer against the real RAUC (1.8), and tests/fake_rauc.py checked against it.

Not collected by `make test` (the name does not match test_*.py: a machine without RAUC must
pass the suite); `.ci/run` runs it by name where `rauc`, `mksquashfs` and `dbus-daemon` are
installed (Debian: `apt-get install rauc squashfs-tools dbus`):

    python -m pytest tests/rauc_real.py

What runs here is the real thing on files: bundles built and signed with `rauc bundle` (a test
PKI made with `cryptography`), a `rauc service` on a private session D-Bus with two slots that
are image files and a custom bootloader backend that behaves like u-boot's boot-count (a small
shell script keeping BOOT_x_LEFT in files); a reboot is the service restarted with
`--override-boot-slot` as that bootloader decides. The installer drives it through the `rauc`
CLI exactly as on a board; the fake goes through the same steps and must print the same JSON
shape and the same failure lines.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from adapters.installer.rauc import RaucInstaller
from ports.firmware_installer import BootOutcome, BootReport, InstallationFailed
from tests import fake_rauc

COMPATIBLE = "evse-test"
START = 20.0            # s: the service to answer

BOOTLOADER = """#!/bin/sh
# u-boot-like custom backend: BOOT_<x>_LEFT attempts in files, "good" while > 0
D="$(dirname "$0")/boot"
case "$1" in
  get-primary) cat "$D/primary" ;;
  set-primary) echo "$2" > "$D/primary"; echo 3 > "$D/left-$2" ;;
  get-state) if [ "$(cat "$D/left-$2")" -gt 0 ]; then echo good; else echo bad; fi ;;
  set-state) if [ "$3" = good ]; then echo 3 > "$D/left-$2"; else echo 0 > "$D/left-$2"; fi ;;
  get-current) cat "$D/booted" ;;
  *) exit 1 ;;
esac
"""


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _certificate(cn: str, key, issuer_key=None, issuer: str | None = None, ca: bool = False) -> x509.Certificate:
    now = datetime.now(timezone.utc)
    return (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(issuer or cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key or key, hashes.SHA256()))


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class RealRauc:
    """A RAUC service on a private session bus, two file slots, the u-boot-like backend."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / "boot").mkdir()
        for name, value in (("primary", "A"), ("booted", "A"), ("left-A", "3"), ("left-B", "3")):
            (folder / "boot" / name).write_text(value + "\n")
        backend = folder / "bootloader.sh"
        backend.write_text(BOOTLOADER)
        backend.chmod(0o755)
        root_key = ec.generate_private_key(ec.SECP256R1())
        root = _certificate("Firmware Root", root_key, ca=True)
        (folder / "keyring.pem").write_bytes(_pem(root))
        signer_key = ec.generate_private_key(ec.SECP256R1())
        (folder / "signer.pem").write_bytes(_pem(_certificate("Firmware Signer", signer_key, root_key,
                                                              "Firmware Root")))
        (folder / "signer.key").write_bytes(_key_pem(signer_key))
        stranger_key = ec.generate_private_key(ec.SECP256R1())
        (folder / "stranger.pem").write_bytes(_pem(_certificate("Stranger", stranger_key, ca=True)))
        (folder / "stranger.key").write_bytes(_key_pem(stranger_key))
        for slot in ("0", "1"):
            with open(folder / f"rootfs{slot}.img", "wb") as f:
                f.truncate(1 << 20)
        (folder / "data").mkdir()
        (folder / "system.conf").write_text(
            f"[system]\ncompatible={COMPATIBLE}\nbootloader=custom\ndata-directory={folder / 'data'}\n\n"
            f"[keyring]\npath={folder / 'keyring.pem'}\n\n"
            f"[handlers]\nbootloader-custom-backend={backend}\n\n"
            f"[slot.rootfs.0]\ndevice={folder / 'rootfs0.img'}\ntype=raw\nbootname=A\n\n"
            f"[slot.rootfs.1]\ndevice={folder / 'rootfs1.img'}\ntype=raw\nbootname=B\n")
        self.boot_id = folder / "boot_id"
        self.boots = 0
        self.boot_id.write_text("boot-0\n")
        self.bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                                    stdout=subprocess.PIPE, text=True)
        self.env = {"DBUS_SESSION_BUS_ADDRESS": self.bus.stdout.readline().strip(),
                    "DBUS_STARTER_BUS_TYPE": "session"}
        self.service: subprocess.Popen | None = None
        self._start("A")

    def _start(self, bootname: str) -> None:
        (self.folder / "boot" / "booted").write_text(bootname + "\n")
        self.service = subprocess.Popen(
            ["rauc", f"--conf={self.folder / 'system.conf'}", f"--override-boot-slot={bootname}", "service"],
            env=os.environ | self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START
        while subprocess.run(["rauc", "status", "--output-format=json"], env=os.environ | self.env,
                             capture_output=True, timeout=START).returncode != 0:
            assert time.monotonic() < deadline, "rauc service did not start"
            time.sleep(0.1)

    def _stop_service(self) -> None:
        if self.service is not None:
            self.service.send_signal(signal.SIGTERM)
            self.service.wait(10)
            self.service = None

    def reboot(self) -> str:
        """The bootloader: the primary while it has attempts left (one used), else the other."""
        self._stop_service()
        boot = self.folder / "boot"
        primary = (boot / "primary").read_text().strip()
        left = int((boot / f"left-{primary}").read_text())
        if left <= 0:
            primary = "B" if primary == "A" else "A"
            (boot / "primary").write_text(primary + "\n")
            left = int((boot / f"left-{primary}").read_text())
        (boot / f"left-{primary}").write_text(f"{max(0, left - 1)}\n")
        self.boots += 1
        self.boot_id.write_text(f"boot-{self.boots}\n")
        self._start(primary)
        return primary

    def close(self) -> None:
        self._stop_service()
        self.bus.terminate()
        self.bus.wait(10)

    def bundle(self, version: str, compatible: str = COMPATIBLE, signer: str = "signer") -> tuple[Path, str]:
        """A real bundle (plain format) and its manifest's text."""
        content = self.folder / f"content-{version}-{signer}"
        content.mkdir()
        (content / "rootfs.img").write_bytes(os.urandom(64 * 1024))
        manifest = (f"[update]\ncompatible={compatible}\nversion={version}\n\n"
                    f"[image.rootfs]\nfilename=rootfs.img\n")
        (content / "manifest.raucm").write_text(manifest)
        out = self.folder / f"update-{version}-{signer}.raucb"
        subprocess.run(["rauc", "bundle", f"--cert={self.folder / (signer + '.pem')}",
                        f"--key={self.folder / (signer + '.key')}", str(content), str(out)],
                       check=True, capture_output=True, timeout=60)
        return out, manifest

    def status(self) -> dict:
        done = subprocess.run(["rauc", "status", "--detailed", "--output-format=json"], env=os.environ | self.env,
                              capture_output=True, text=True, timeout=START, check=True)
        return json.loads(done.stdout)


@pytest.fixture
def real(tmp_path, monkeypatch):
    for tool in ("rauc", "mksquashfs", "dbus-daemon"):
        assert shutil.which(tool), f"{tool} is not installed: this module runs only where RAUC is (see its docstring)"
    system = RealRauc(tmp_path)
    for name, value in system.env.items():
        monkeypatch.setenv(name, value)
    try:
        yield system
    finally:
        system.close()


def installer(real: RealRauc) -> RaucInstaller:
    return RaucInstaller(real.folder / "state", "factory", boot_id_file=real.boot_id)


async def test_real_rauc_install_reboot_confirm(real):
    assert await installer(real).after_boot() == BootReport("factory")
    bundle, _ = real.bundle("2.0.0")
    assert await installer(real).install(bundle) == "2.0.0"
    assert await installer(real).after_boot() == BootReport("factory", BootOutcome.AWAITING_REBOOT, "2.0.0")
    assert real.reboot() == "B"
    booted = installer(real)
    assert await booted.after_boot() == BootReport("2.0.0", BootOutcome.BOOTED_NEW, "2.0.0")
    await booted.confirm()
    assert (real.folder / "boot" / "left-B").read_text().strip() == "3"
    assert real.reboot() == "B"
    assert await installer(real).after_boot() == BootReport("2.0.0")


async def test_real_rauc_unconfirmed_slot_rolls_back_by_the_boot_count(real):
    bundle, _ = real.bundle("2.0.0")
    await installer(real).install(bundle)
    for _ in range(3):
        assert real.reboot() == "B"
    assert real.reboot() == "A"
    assert await installer(real).after_boot() == BootReport("factory", BootOutcome.ROLLED_BACK, "2.0.0")


async def test_real_rauc_refusals_are_installation_failed(real):
    wrong, _ = real.bundle("2.0.0", compatible="other-board")
    with pytest.raises(InstallationFailed) as caught:
        await installer(real).install(wrong)
    assert str(caught.value) == ("rauc install: Installation error: Compatible mismatch: Expected "
                                 f"'{COMPATIBLE}' but bundle manifest has 'other-board'")
    untrusted, _ = real.bundle("2.0.1", signer="stranger")
    with pytest.raises(InstallationFailed, match="signature"):
        await installer(real).install(untrusted)
    assert await installer(real).after_boot() == BootReport("factory")


def _shape(value, path: str = ""):
    """The JSON's structure: keys everywhere, values where they mean something to the adapter."""
    meaningful = ("booted", "boot_primary", "state", "bootname", "version", "compatible", "boot_status")
    if isinstance(value, dict):
        return {k: _shape(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((_shape(v, path) for v in value), key=json.dumps)
    if path in meaningful:
        return value
    return type(value).__name__


async def test_the_fake_prints_what_the_real_rauc_prints(real, tmp_path, monkeypatch):
    fake_state = tmp_path / "fake.json"
    fake_rauc.save(fake_state, fake_rauc.new_state(COMPATIBLE, version=None))
    monkeypatch.setenv("FAKE_RAUC_STATE", str(fake_state))

    def fake(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, fake_rauc.__file__, *args], capture_output=True, text=True,
                              timeout=30)

    def both_status() -> tuple[dict, dict]:
        fake_json = json.loads(fake("status", "--detailed", "--output-format=json").stdout)
        real_json = real.status()
        for data in (fake_json, real_json):      # the slots' device and type are the board's
            for slot in data["slots"]:
                for body in slot.values():
                    body["device"], body["type"] = "-", "-"
        return _shape(real_json), _shape(fake_json)

    real_shape, fake_shape = both_status()
    assert real_shape == fake_shape, f"real {real_shape}\nfake {fake_shape}"
    bundle, manifest = real.bundle("2.0.0")
    (tmp_path / "fake.raucb").write_text(manifest)
    assert subprocess.run(["rauc", "install", str(bundle)], capture_output=True, timeout=120).returncode == 0
    assert fake("install", str(tmp_path / "fake.raucb")).returncode == 0
    real_shape, fake_shape = both_status()
    assert real_shape == fake_shape, f"real {real_shape}\nfake {fake_shape}"
    real.reboot()
    fake_rauc.reboot(fake_state)
    real_shape, fake_shape = both_status()
    assert real_shape == fake_shape, f"real {real_shape}\nfake {fake_shape}"
    real_mark = subprocess.run(["rauc", "status", "mark-good"], capture_output=True, text=True, timeout=30)
    assert real_mark.stdout.strip() == fake("status", "mark-good").stdout.strip() == \
        "rauc status: marked slot rootfs.1 as good"
    real_active = subprocess.run(["rauc", "status", "mark-active", "booted"], capture_output=True, text=True,
                                 timeout=30)
    assert real_active.stdout.strip() == fake("status", "mark-active", "booted").stdout.strip(), real_active
    wrong, wrong_manifest = real.bundle("3.0.0", compatible="other-board")
    (tmp_path / "wrong.raucb").write_text(wrong_manifest)
    real_fail = subprocess.run(["rauc", "install", str(wrong)], capture_output=True, text=True, timeout=120)
    fake_fail = fake("install", str(tmp_path / "wrong.raucb"))
    assert real_fail.returncode == fake_fail.returncode == 1
    last_error = [line for line in real_fail.stdout.splitlines() if line.startswith("LastError: ")]
    assert last_error == [line for line in fake_fail.stdout.splitlines() if line.startswith("LastError: ")]
    assert real_fail.stderr.strip() == f"Installing `{wrong}` failed"
    assert fake_fail.stderr.strip() == f"Installing `{tmp_path / 'wrong.raucb'}` failed"
