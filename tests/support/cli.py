"""``smc`` as users run it: a real subprocess of this checkout's package (no test imports
it in-process when what is tested is the command line: exit codes, stdout, stderr)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import PROJECT_ROOT


def run_smc(
    *args: str, cwd: Path, cache: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m smc ARGS`` in ``cwd`` with this checkout first on the path, no colour, and
    (``cache``) the machine cache inside ``cwd``, so runs never share one."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "NO_COLOR": "1"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if cache:
        env["SMC_CACHE_DIR"] = str(cwd / "cache")
    return subprocess.run(
        [sys.executable, "-m", "smc", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=timeout,
    )
