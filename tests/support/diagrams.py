"""Reading diagram sources and drawing them with the real renderers, for the diagram tests:
the edges a Mermaid or DOT text says it draws, and ``mmdc`` (in Debian's Chromium) and
Graphviz's ``dot`` run on them. Needs ``apt-get install -y graphviz chromium`` and
``PUPPETEER_SKIP_DOWNLOAD=1 npm ci --prefix tests/js`` (scripts/test.sh installs both)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import PROJECT_ROOT
from tests.support.svg import START

MMDC = PROJECT_ROOT / "tests" / "js" / "node_modules" / ".bin" / "mmdc"
MMDC_TIMEOUT = 480  # seconds for one mmdc run over every diagram (one browser)


_MERMAID_STATE_EDGE = re.compile(r"^\s*(\S+) --> (\S+)(?: : (.*))?$")
_MERMAID_FLOW_EDGE = re.compile(r'^\s*(\S+) -->(?:\|"(.*)"\|)? (\S+)$')
_DOT_EDGE = re.compile(r"^\s*(\S+) -> (\S+)(?: \[(.*)\])?$")
_DOT_LABEL = re.compile(r'(?:^| )label=(?:"((?:[^"\\]|\\.)*)"|([^ "]+))')
_DOT_POINTS = {"__start": START, "__end": START}


def _mermaid_text(text: str) -> str:
    text = re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), text)
    return "\n".join(" ".join(line.split()) for line in text.split("<br/>"))


def mermaid_edges(source: str) -> list[tuple[str, str, str]]:
    """(source, target, label) of each edge a Mermaid text declares."""
    found = []
    for line in source.splitlines():
        if match := _MERMAID_STATE_EDGE.match(line):
            found.append((match[1], match[2], _mermaid_text(match[3] or "")))
        elif match := _MERMAID_FLOW_EDGE.match(line):
            found.append((match[1], match[3], _mermaid_text(match[2] or "")))
    return found


def _dot_text(quoted: str) -> str:
    """A DOT label as shown: ``\\n`` and ``\\l`` end lines, other escapes drop the ``\\``."""
    lines: list[str] = []
    line: list[str] = []
    chars = iter(quoted)
    for char in chars:
        if char == "\\":
            char = next(chars, "")
            if char in "nl":
                lines.append("".join(line))
                line = []
                continue
        line.append(char)
    lines.append("".join(line))
    return "\n".join(" ".join(part.split()) for part in lines if part or len(lines) == 1)


def dot_edges(source: str) -> list[tuple[str, str, str]]:
    found = []
    for line in source.splitlines():
        if match := _DOT_EDGE.match(line):
            label = _DOT_LABEL.search(match[3] or "")
            text = (
                "" if label is None else _dot_text(label[1] if label[1] is not None else label[2])
            )
            found.append(
                (_DOT_POINTS.get(match[1], match[1]), _DOT_POINTS.get(match[2], match[2]), text)
            )
    return found


def _chromium() -> str:
    for candidate in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(candidate)
        if found:
            return found
    pytest.fail("no Chromium for Mermaid's CLI: apt-get install -y chromium")


def render_mermaid(diagrams: dict[str, str], workdir: Path) -> dict[str, str]:
    """Name -> SVG, every diagram drawn by ``mmdc`` in one run (a Markdown file of fences)."""
    assert (
        MMDC.is_file()
    ), "Mermaid's CLI is missing: PUPPETEER_SKIP_DOWNLOAD=1 npm ci --prefix tests/js"
    names = sorted(diagrams)
    config = workdir / "puppeteer.json"
    config.write_text(
        json.dumps(
            {
                "executablePath": _chromium(),
                "args": ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage"],
            }
        ),
        encoding="utf-8",
    )
    page = workdir / "diagrams.md"
    page.write_text(
        "".join(f"```mermaid\n{diagrams[name]}```\n\n" for name in names), encoding="utf-8"
    )
    run = subprocess.run(
        [str(MMDC), "--quiet", "-p", str(config), "-i", str(page), "-o", str(workdir / "out.svg")],
        capture_output=True,
        text=True,
        timeout=MMDC_TIMEOUT,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return {
        name: (workdir / f"out-{index}.svg").read_text(encoding="utf-8")
        for index, name in enumerate(names, start=1)
    }


def render_dot(source: str, fmt: str = "svg") -> bytes:
    dot = shutil.which("dot")
    assert dot is not None, "Graphviz's dot is not installed (apt-get install graphviz)"
    run = subprocess.run([dot, f"-T{fmt}"], input=source.encode(), capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr.decode("utf-8", "replace")
    return run.stdout
