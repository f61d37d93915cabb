"""``smc`` as users run it: a real subprocess of this checkout's package (no test imports
it in-process when what is tested is the command line: exit codes, stdout, stderr)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
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


def bash_completions(cwd: Path, *lines: str) -> list[set[str]]:
    """What real bash offers, through the script ``smc completion bash`` writes, for each
    command line in ``lines`` (its last word the one being completed, ``""`` for none yet),
    in ``cwd`` (paths are completed there)."""
    script = run_smc("completion", "bash", cwd=cwd)
    assert script.returncode == 0, script.stderr
    (cwd / "smc.bash").write_text(script.stdout)
    probe = "\n".join(
        [
            "source ./smc.bash || exit 9",
            "complete -p smc >/dev/null || exit 8",
            'words() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _shtab_smc;',
            "  printf '%s\\n' \"${COMPREPLY[@]}\" | sort | tr '\\n' ' '; echo; }",
            *(f"words {line}" for line in lines),
        ]
    )
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", probe],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [set(line.split()) for line in result.stdout.splitlines()]


def command_name(args: Sequence[str]) -> str:
    """How smc names the command ``args`` start (``smc jobs add: error: …``): the command,
    and the subcommand of ``jobs``, ``workflow`` and ``history prune``."""
    if args[0] in ("jobs", "workflow") or tuple(args[:2]) == ("history", "prune"):
        return f"{args[0]} {args[1]}"
    return args[0]
