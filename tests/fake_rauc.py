#!/usr/bin/env python3
"""A stand-in for the `rauc` 1.8 command (the one fake of the installer tests), faithful to the
parts of its CLI and output that adapters/installer/rauc.py uses, checked against the real tool
by tests_rauc/test_real_rauc.py where RAUC is installed:

    rauc status [--detailed] --output-format=json|json-pretty
    rauc status mark-good|mark-bad|mark-active [booted|other|<slot name>]
    rauc install BUNDLE

State: the JSON file named by $FAKE_RAUC_STATE (see `new_state`): two slots rootfs.0 (A) and
rootfs.1 (B), the booted bootname, the primary slot and per slot the bootloader's remaining
boot attempts (u-boot's BOOT_x_LEFT: boot_status is "good" while > 0). A "bundle" here is the
text of a RAUC manifest (`[update]` compatible=, version=): the real tool reads the same
manifest out of a signed squashfs. $FAKE_RAUC_FAIL, when set, makes `install` fail with that
LastError (a write error, a bad signature); $FAKE_RAUC_HANG=<seconds> makes it take that long
(a power loss during the install, when the test kills it).

`reboot(state_path)` (for the tests, not a rauc command) is the bootloader: the primary slot
boots while it has attempts left (one is used per boot), else the other one becomes primary.
"""
from __future__ import annotations

import configparser
import hashlib
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ATTEMPTS = 3


def new_state(compatible: str = "evse-openevse", version: str | None = "1.0.0") -> dict:
    """A board booted from slot A (rootfs.0) holding `version`; slot B never written."""
    def slot(bootname: str, device: str) -> dict:
        return {"bootname": bootname, "device": device, "attempts": ATTEMPTS, "status": None}
    state = {"compatible": compatible, "booted": "A", "primary": "rootfs.0",
             "slots": {"rootfs.0": slot("A", "/dev/mmcblk0p2"), "rootfs.1": slot("B", "/dev/mmcblk0p3")}}
    if version is not None:
        state["slots"]["rootfs.0"]["status"] = _slot_status(compatible, version, "0" * 64, 0)
    return state


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _slot_status(compatible: str, version: str, sha256: str, size: int, count: int = 1) -> dict:
    return {"bundle": {"compatible": compatible, "version": version},
            "checksum": {"sha256": sha256, "size": size},
            "installed": {"timestamp": _now(), "count": count},
            "activated": {"timestamp": _now(), "count": count},
            "status": "ok"}


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def save(path: Path, state: dict) -> None:
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


def reboot(path: Path) -> str:
    """The bootloader at a reboot; returns the bootname that boots."""
    state = load(path)
    primary = state["slots"][state["primary"]]
    if primary["attempts"] <= 0:
        other = next(name for name in state["slots"] if name != state["primary"])
        state["primary"] = other
        primary = state["slots"][other]
    primary["attempts"] = max(0, primary["attempts"] - 1)
    state["booted"] = primary["bootname"]
    save(path, state)
    return primary["bootname"]


def _booted_name(state: dict) -> str:
    return next(name for name, s in state["slots"].items() if s["bootname"] == state["booted"])


def status_json(state: dict, detailed: bool) -> dict:
    slots = []
    for name, s in state["slots"].items():
        body = {"class": "rootfs", "device": s["device"], "type": "ext4", "bootname": s["bootname"],
                "state": "booted" if s["bootname"] == state["booted"] else "inactive",
                "parent": None, "mountpoint": None,
                "boot_status": "good" if s["attempts"] > 0 else "bad"}
        if detailed:
            body["slot_status"] = s["status"] or {"bundle": {"compatible": None}}
        slots.append({name: body})
    return {"compatible": state["compatible"], "variant": "", "booted": state["booted"],
            "boot_primary": state["primary"], "slots": slots}


def _target(state: dict, which: str) -> str | None:
    booted = _booted_name(state)
    if which == "booted":
        return booted
    if which == "other":
        return next(name for name in state["slots"] if name != booted)
    return which if which in state["slots"] else None


def cmd_status(args: list[str], path: Path) -> int:
    state = load(path)
    rest = [a for a in args if not a.startswith("--")]
    if rest:
        how, which = rest[0], (rest[1] if len(rest) > 1 else "booted")
        slot = _target(state, which)
        if how not in ("mark-good", "mark-bad", "mark-active") or slot is None:
            print(f"rauc status: unknown subcommand or slot {' '.join(rest)}", file=sys.stderr)
            return 1
        if how == "mark-good":
            state["slots"][slot]["attempts"] = ATTEMPTS
            print(f"rauc status: marked slot {slot} as good")
        elif how == "mark-bad":
            state["slots"][slot]["attempts"] = 0
            print(f"rauc status: marked slot {slot} as bad")
        else:
            state["primary"] = slot
            state["slots"][slot]["attempts"] = ATTEMPTS
            print(f"rauc status: activated slot {slot}")
        save(path, state)
        return 0
    fmt = next((a.split("=", 1)[1] for a in args if a.startswith("--output-format=")), "readable")
    if fmt not in ("json", "json-pretty"):
        print(f"Unknown output format: '{fmt}'", file=sys.stderr)
        return 1
    print(json.dumps(status_json(state, "--detailed" in args), indent=2 if fmt == "json-pretty" else None,
                     separators=None if fmt == "json-pretty" else (",", ":")))
    return 0


def _fail(bundle: Path, reason: str) -> int:
    print("100% Installing failed.\nLastError: " + reason + "\nidle")
    print(f"Installing `{bundle}` failed", file=sys.stderr)
    return 1


def cmd_install(args: list[str], path: Path) -> int:
    if len(args) != 1:
        print("rauc install: expected one bundle", file=sys.stderr)
        return 1
    bundle = Path(args[0]).absolute()
    if not bundle.is_file():
        print(f"No such file: {args[0]}", file=sys.stderr)
        return 1
    state = load(path)
    print("installing\n  0% Installing\n 20% Checking bundle")
    manifest = configparser.ConfigParser()
    try:
        manifest.read_string(bundle.read_text())
        compatible, version = manifest["update"]["compatible"], manifest["update"].get("version")
    except (UnicodeDecodeError, configparser.Error, KeyError):
        return _fail(bundle, "Invalid bundle format: not a RAUC bundle")
    if compatible != state["compatible"]:
        return _fail(bundle, f"Installation error: Compatible mismatch: Expected '{state['compatible']}' "
                             f"but bundle manifest has '{compatible}'")
    if os.environ.get("FAKE_RAUC_HANG"):
        time.sleep(float(os.environ["FAKE_RAUC_HANG"]))
    if os.environ.get("FAKE_RAUC_FAIL"):
        return _fail(bundle, os.environ["FAKE_RAUC_FAIL"])
    target = _target(state, "other")
    slot = state["slots"][target]
    count = ((slot["status"] or {}).get("installed") or {}).get("count", 0) + 1
    data = bundle.read_bytes()
    slot["status"] = _slot_status(compatible, version, hashlib.sha256(data).hexdigest(), len(data), count)
    if version is None:
        del slot["status"]["bundle"]["version"]
    slot["attempts"] = ATTEMPTS
    state["primary"] = target
    save(path, state)
    print(f" 90% Copying image to {target} done.\n100% Installing done.\nInstalling `{bundle}` succeeded")
    return 0


def main(argv: list[str]) -> int:
    path = Path(os.environ["FAKE_RAUC_STATE"])
    args = [a for a in argv if not a.startswith("--conf=")]
    if not args:
        print("Usage: rauc [OPTION?] <COMMAND>", file=sys.stderr)
        return 1
    if args[0] == "status":
        return cmd_status(args[1:], path)
    if args[0] == "install":
        return cmd_install(args[1:], path)
    print(f"Unknown command '{args[0]}'", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
