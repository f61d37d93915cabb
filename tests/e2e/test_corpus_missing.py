"""Without the compatibility corpus the suite still collects and runs: only the tests that
need the corpus fail, each with the one line saying where it was looked for
(tests/support/corpus.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MISSING = "/nonexistent/smc-corpus"
LINE = f"the compatibility corpus is missing: looked in {MISSING} "


def pytest_without_corpus(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SMC_CORPUS": MISSING}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_whole_suite_collects_without_the_corpus(tmp_path: Path) -> None:
    result = pytest_without_corpus(tmp_path, "--collect-only", "tests")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_only_the_corpus_tests_fail_each_saying_where_it_looked(tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    files = [
        "tests/compiler/test_paths.py",
        "tests/compiler/test_corpus.py",
        "tests/e2e/test_corpus.py",
    ]
    result = pytest_without_corpus(tmp_path, f"--junitxml={report}", *files)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    passed, failed = [], {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname')}.{case.get('name')}"
        problems = [p for p in case if p.tag in ("failure", "error", "skipped")]
        if problems:
            failed[name] = [(p.tag, p.get("message", "")) for p in problems]
        else:
            passed.append(name)
    assert len(passed) >= 10 and all("corpus" not in name for name in passed), passed
    module = {f: f.removesuffix(".py").replace("/", ".") for f in files}  # the junit classname
    by_file = {f: [n for n in failed if n.startswith(f"{module[f]}.")] for f in files}
    assert len(by_file["tests/compiler/test_paths.py"]) == 5 and all(map(len, by_file.values()))
    for name, problems in failed.items():
        assert "corpus" in name, name
        ((tag, message),) = problems
        assert tag in ("failure", "error") and LINE in message, (name, message)
        assert "\n" not in message.strip(), message
