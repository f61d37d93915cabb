"""Generated modules against the user's own tools, in fresh projects.

``smc build`` lays modules out at the line length the project's black (else ruff) is
configured with (``config.formatter_line_length``; 88 when nothing is set). For a project
with no configuration, one at 100 (``[tool.black]`` and ``[tool.ruff]``) and one at 120
(``[tool.black]`` and a ``ruff.toml``), the real tools, run as a user runs them, are clean on
the output: ``black --check``, ``ruff format --check``, ``ruff check`` with ruff's default
rules (which report an unused ``noqa``, RUF100) and with a wide rule set including E501 at
the configured length. Running black over the output changes nothing, so ``smc build
--check`` still passes after it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from smc.compiler.check import check_paths
from smc.compiler.config import ConfigError, formatter_line_length
from tests.support import PROJECT_ROOT

EXAMPLES = PROJECT_ROOT / "examples"

#: A machine whose action data holds strings too long for any line (split into pieces).
LONG_STRINGS = {
    "name": "long_strings",
    "initial_state": "idle",
    "states": ["idle", "done"],
    "events": ["go"],
    "transitions": [{"from": "idle", "to": "done", "event": "go"}],
    "actions": {
        "idle": [
            {
                "type": "bash",
                "description": "Copy every input file into the archive, "
                "then write a manifest that lists each file with its checksum " * 3,
                "command": "for f in data/in/*; do cp \"$f\" 'data/archive/' && sha256sum "
                '"$f" >> data/archive/MANIFEST; done; printf \'%s\\n\' "it\'s done" '
                "> data/archive/DONE",
                "success": "go",
            }
        ]
    },
}

#: A machine with typed data (docs/generated-code.md, "Typed data"), some of it too long for
#: one line: the Context dataclass, payload TypedDicts and schemas pass the same tools.
TYPED_DATA = {
    "name": "typed_data",
    "initial_state": "idle",
    "context": {
        "attempts": {"type": "integer", "minimum": 0, "default": 0},
        "last_error": {"type": ["string", "null"], "default": None},
        "mode": {
            "enum": ["a rather long mode name that fills the line", "another long mode name"],
            "default": "another long mode name",
        },
        "paths": {"type": "array", "items": {"type": "string"}, "default": ["/var/data/in"] * 6},
        "owner": {"type": "string"},
    },
    "events": {
        "go": None,
        "failed": {
            "payload": {
                "type": "object",
                "properties": {"error": {"type": "string"}, "code": {"type": "integer"}},
                "required": ["error"],
            }
        },
    },
    "jobs": {"task": {"data": {"type": "object", "required": ["path"]}}},
    "transitions": [
        {"from": "idle", "to": "busy", "event": "go"},
        {
            "from": "busy",
            "to": "idle",
            "event": "failed",
        },
    ],
}

CONFIGS = {
    "default (88)": {},
    "pyproject 100": {"pyproject.toml": "[tool.black]\nline-length = 100\n\n"
                      "[tool.ruff]\nline-length = 100\n"},
    "ruff.toml 120": {"pyproject.toml": "[tool.black]\nline-length = 120\n",
                      "ruff.toml": "line-length = 120\n"},
}  # fmt: skip


def run(project: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", *command],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_generated_modules_pass_the_users_formatter_and_linter(tmp_path: Path, config: str) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for name, text in CONFIGS[config].items():
        (project / name).write_text(text)
    import shutil

    shutil.copytree(EXAMPLES, project / "examples", ignore=shutil.ignore_patterns("*.md"))
    (project / "examples" / "long_strings.yaml").write_text(yaml.safe_dump(LONG_STRINGS))
    (project / "examples" / "typed_data.yaml").write_text(yaml.safe_dump(TYPED_DATA))
    built = run(project, "smc", "build", "examples/")
    assert built.returncode == 0, built.stderr
    modules = sorted(str(p.relative_to(project)) for p in (project / "generated").glob("*.py"))
    machines = len(check_paths([str(EXAMPLES)]).machines)  # (a workflow file gets none)
    assert len(modules) == machines + 3  # and the two above, and __init__.py
    width = {"default (88)": 88, "pyproject 100": 100, "ruff.toml 120": 120}[config]
    text = (project / "generated" / "long_strings.py").read_text()
    assert max(len(line) for line in text.splitlines()) <= width
    assert "noqa" not in text

    checks = [
        ("black", "--check", "generated"),
        ("ruff", "format", "--check", "generated"),
        ("ruff", "check", "--extend-select", "RUF100", "generated"),
        ("ruff", "check", "--select", "E,W,F,I,B,UP,SIM,RUF", "generated"),
    ]
    for check in checks:
        result = run(project, *check)
        assert result.returncode == 0, (check, result.stdout, result.stderr)

    reformatted = run(project, "black", "generated")
    assert reformatted.returncode == 0, reformatted.stderr
    fresh = run(project, "smc", "build", "examples/", "--check")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr


def test_a_changed_line_length_makes_modules_stale(tmp_path: Path) -> None:
    (tmp_path / "machine.yaml").write_text(yaml.safe_dump(LONG_STRINGS))
    assert run(tmp_path, "smc", "build", "machine.yaml").returncode == 0
    (tmp_path / "pyproject.toml").write_text("[tool.black]\nline-length = 120\n")
    stale = run(tmp_path, "smc", "build", "machine.yaml", "--check")
    assert stale.returncode == 1
    assert run(tmp_path, "smc", "build", "machine.yaml").returncode == 0
    assert run(tmp_path, "black", "--check", "generated").returncode == 0


# ---- which line length -----------------------------------------------------------------


def test_line_length_defaults_to_88(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert formatter_line_length(tmp_path / "generated") == 88


def test_black_wins_over_ruff(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.ruff]\nline-length = 120\n[tool.black]\nline-length = 99\n"
    )
    assert formatter_line_length(tmp_path / "generated") == 99


def test_ruff_alone_and_ruff_toml(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 110\n")
    assert formatter_line_length(tmp_path / "out") == 110
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "ruff.toml").write_text("line-length = 77\n")
    assert formatter_line_length(tmp_path / "out") == 77


def test_the_nearest_configuration_governs_as_each_tool_finds_it(tmp_path: Path) -> None:
    # black skips a pyproject.toml without [tool.black] and stops at the repository root
    (tmp_path / "pyproject.toml").write_text("[tool.black]\nline-length = 101\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "pyproject.toml").write_text('[project]\nname = "sub"\n')
    assert formatter_line_length(sub / "generated") == 101
    (sub / ".git").mkdir()
    assert formatter_line_length(sub / "generated") == 88


@pytest.mark.parametrize("value", ['"long"', "0", "true", "1000"])
def test_a_bad_line_length_is_a_config_error(tmp_path: Path, value: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.black]\nline-length = {value}\n")
    with pytest.raises(ConfigError, match="line-length"):
        formatter_line_length(tmp_path)
