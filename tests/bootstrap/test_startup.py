"""Start-up (issue 16): what a deployment loads. Runs a fresh interpreter (this test process
has every adapter loaded already), so it is not in the fast tier."""
from __future__ import annotations

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
