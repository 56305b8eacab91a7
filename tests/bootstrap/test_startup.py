"""Start-up (issue 16): what a deployment loads. Runs a fresh interpreter (this test process
has every adapter loaded already), so it is not in the fast tier."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path


# (adapters.serial_tty and adapters.udev_devices are loaded by the config, which checks the
# [hardware] tables' device names and speeds whatever the adapter)
HARDWARE_ADAPTERS_MODULES = ("adapters.openevse", "adapters.pn532", "adapters.sdm630", "adapters.linux_system")


def test_the_sim_deployment_loads_no_hardware_adapter():
    """Issue 16 (start-up): composing and running the simulator imports none of the board's
    adapters (a fresh interpreter: this test process has them all loaded already)."""
    code = ("import sys\n"
            "from pathlib import Path\n"
            "from bootstrap.compose import compose\n"
            "from bootstrap.config import parse_config\n"
            "import bootstrap.cli\n"
            "compose(parse_config('[station]\\nid = \"CS-1\"\\n[hardware]\\nadapter = \"sim\"\\n', Path('/tmp'),"
            " source='station.toml'), lambda: {})\n"
            f"print(sorted(m for m in sys.modules if m.startswith({HARDWARE_ADAPTERS_MODULES!r})))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


#: what `evse run` must not load before the BootNotification (issue 16, start-up): each only
#: when a command or a block needs it (`evse certs` or a certificate operation, a file transfer)
LAZY_ON_RUN = ("cryptography", "httpx")


def _loaded_by(code: str, prefixes: tuple[str, ...]) -> list[str]:
    """The modules of `prefixes` a fresh interpreter has loaded after `code`."""
    code += f"\nimport sys\nprint(sorted(m for m in sys.modules if m.split('.')[0] in {prefixes!r} or m in {prefixes!r}))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    return ast.literal_eval(out.stdout.strip().splitlines()[-1])


def test_the_run_command_line_loads_no_certificate_library():
    """Issue 16 (start-up): building the `evse` parser (every subcommand's options, `evse certs`
    included) and composing the sim loads no cryptography (A/M blocks: loaded by `evse certs`
    or a certificate operation) and no HTTP client."""
    code = ("from pathlib import Path\n"
            "import bootstrap.cli\n"
            "from bootstrap.compose import compose\n"
            "from bootstrap.config import parse_config\n"
            "import bootstrap.runtime, bootstrap.status\n"
            "try:\n"
            "    bootstrap.cli.main(['run', '--help'])\n"
            "except SystemExit:\n"
            "    pass\n"
            "compose(parse_config('[station]\\nid = \"CS-1\"\\n[hardware]\\nadapter = \"sim\"\\n', Path('/tmp'),"
            " source='station.toml'), lambda: {})\n")
    assert _loaded_by(code, LAZY_ON_RUN) == []


def test_a_profile_1_boot_on_an_empty_certificate_store_loads_no_cryptography(tmp_path):
    """Issue 16 (start-up): what a boot cycle does with the certificate store before the
    BootNotification (bootstrap/runtime.py _open_certificates, _certificate_catalogue,
    link_settings) on a security profile 1 station whose store is empty loads no cryptography;
    the first certificate the store reads does."""
    code = ("from datetime import datetime, timezone\n"
            "from pathlib import Path\n"
            "from bootstrap.compose import compose\n"
            "from bootstrap.config import parse_config\n"
            "from bootstrap.credentials import provision, tls_files, valid_credentials\n"
            "from domain.security.certificates import STATION_KINDS\n"
            f"config = parse_config('[station]\\nid = \"CS-1\"\\n[hardware]\\nadapter = \"sim\"\\n"
            f"[storage]\\npath = \"{tmp_path / 'evse.db'}\"\\n', Path('/tmp'), source='station.toml')\n"
            "store = compose(config, lambda: {}).open_certificates()\n"
            "now = datetime.now(timezone.utc)\n"
            "provision(config, store, now)\n"
            "assert store.list() == [] and not any(store.has_previous(k) for k in STATION_KINDS)\n"
            "assert valid_credentials(config, store, now) is not None\n"
            "tls_files(config, store)\n")
    assert _loaded_by(code, ("cryptography",)) == []
    assert _loaded_by(code + "store.csms_root_bundle(); from domain.security.certificates import StoreLimits\n"
                      "store.install('CSMSRootCertificate', '-', now=now, limits=StoreLimits())\n",
                      ("cryptography",)) != []
