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
