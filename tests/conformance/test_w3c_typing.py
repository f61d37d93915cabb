"""Every module the 101 core W3C SCXML tests compile to passes ``mypy --strict`` and pyright
in strict mode, as ``generated/`` does: the SCXML import reaches code shapes the examples do
not (sends, raised events carrying ids, empty decision tables, resume points), and a
user's own ``.scxml`` may too (docs/generated-code.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.w3c import listed_tests, w3c_dir

ROOT = Path(__file__).resolve().parents[2]
PYRIGHT = ROOT / "tests" / "js" / "node_modules" / ".bin" / "pyright"

pytestmark = pytest.mark.skipif(
    not (w3c_dir() / "CORE.txt").is_file(),
    reason=f"the W3C SCXML tests are not at {w3c_dir()} (set SMC_W3C_DIR)",
)


@pytest.fixture(scope="module")
def core_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The core tests, built by ``smc build`` (it takes ``.scxml`` directly) into one
    package."""
    out = tmp_path_factory.mktemp("w3c-core") / "core"
    documents = [
        str(w3c_dir() / "mandatory" / f"{test}.scxml") for test, _ in listed_tests("CORE.txt")
    ]
    done = subprocess.run(
        [sys.executable, "-m", "smc", "build", "--no-diagrams", "-o", str(out), *documents],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(list(out.glob("test*.py"))) == 101
    return out


def test_the_core_modules_pass_pyright_strict(core_modules: Path) -> None:
    assert PYRIGHT.is_file(), "pyright is missing: npm ci --prefix tests/js"
    config = {
        "pythonVersion": "3.11",
        "typeCheckingMode": "strict",
        "extraPaths": [str(ROOT)],
        "include": [core_modules.name],
    }
    project = core_modules.parent / "pyrightconfig.json"
    project.write_text(json.dumps(config))
    done = subprocess.run(
        [str(PYRIGHT), "--outputjson", "--project", str(project)],
        cwd=core_modules.parent, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    report = json.loads(done.stdout)
    errors = [
        f"{Path(d['file']).name}:{d['range']['start']['line'] + 1}: {d.get('rule')}: "
        f"{d['message']}"
        for d in report["generalDiagnostics"]
        if d["severity"] == "error"
    ]
    assert errors == []
    assert report["summary"]["filesAnalyzed"] >= 101


def test_the_core_modules_pass_mypy_strict(core_modules: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--python-version",
         "3.11", str(core_modules)],
        capture_output=True, text=True, timeout=900, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
