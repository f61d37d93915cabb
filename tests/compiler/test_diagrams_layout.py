"""The diagrams as people see them: drawn by the real renderers, then measured.

Every Mermaid diagram is rendered to SVG by Mermaid's own CLI (``mmdc``, in Debian's Chromium)
and every DOT diagram by Graphviz's ``dot -Tsvg``; tests/support/svg.py reads the geometry
back. For the examples (what ``smc build examples/`` writes, the diagrams people see first)
the picture must be clear: every edge starts and ends at a state (never at a group's box),
every label is there, no label overlaps another label, a state or a group's title, and no
edge runs through a group's title. For the sample machines with hostile names and the
compatibility corpus's shapes (tests/golden/diagrams/inputs) every edge must still connect
the right states with the right label; their layout is Mermaid's and Graphviz's business
(docs/diagrams.md says where Mermaid's layout falls short).

Needs, as scripts/test.sh installs them: ``apt-get install -y graphviz chromium`` and
``PUPPETEER_SKIP_DOWNLOAD=1 npm ci --prefix tests/js``. The run leaves PNGs of the
simple_worker and task_worker overviews, as each renderer draws them, in test-artifacts/.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from smc.compiler.check import check_paths
from smc.compiler.diagrams import Detail, machine_diagrams, system_diagrams
from tests.support.svg import (
    START,
    Rendered,
    edge_ends,
    layout_problems,
    parse_graphviz_svg,
    parse_mermaid_svg,
)

#: Slow as a whole: its module fixture draws every diagram with Mermaid's CLI in Chromium (~40 s).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
INPUTS = ROOT / "tests" / "golden" / "diagrams" / "inputs"
MMDC = ROOT / "tests" / "js" / "node_modules" / ".bin" / "mmdc"
ARTIFACTS = ROOT / "test-artifacts"
SHOWN = ("simple_worker", "task_worker")  # kept as PNGs in test-artifacts/
MMDC_TIMEOUT = 480  # seconds for one mmdc run over every diagram (one browser)


def _diagrams(folder: Path, details: tuple[Detail, ...]) -> dict[str, str]:
    """Name -> text of each machine's diagrams and the system diagram of ``folder``."""
    result = check_paths([str(folder)])
    assert result.machines and not result.errors, result.errors
    out: dict[str, str] = {}
    for detail in details:
        for machine in result.machines:
            for name, text in machine_diagrams(machine, detail=detail).items():
                out[f"{detail}/{name}"] = text
    out.update(system_diagrams(result.machines))
    return out


EXAMPLES = _diagrams(ROOT / "examples", ("names", "full"))
SAMPLES = _diagrams(INPUTS, ("names", "full"))


# ---- what each source says it draws -----------------------------------------------------

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


def test_the_source_readers_see_every_edge() -> None:
    """The readers above find as many edges as the texts have arrows (so a test below
    cannot pass by reading none)."""
    for name, text in {**EXAMPLES, **SAMPLES}.items():
        if name.endswith(".mmd"):
            assert len(mermaid_edges(text)) == text.count(" -->"), name
        elif name.endswith(".dot"):
            assert len(dot_edges(text)) == text.count(" -> "), name
    assert ("waiting", "processing", "new_job") in mermaid_edges(
        EXAMPLES["names/simple_worker.mmd"]
    )
    # Mermaid writes a self-loop inside its state's box instead of drawing it
    assert "waiting : ↻ no_jobs" in EXAMPLES["names/simple_worker.mmd"]
    assert ("waiting", "waiting", "no_jobs") in dot_edges(EXAMPLES["names/simple_worker.dot"])


# ---- rendering ---------------------------------------------------------------------------


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


@pytest.fixture(scope="module")
def mermaid_svgs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every example's and sample's Mermaid diagram as mmdc draws it."""
    batch = {f"examples:{n}": t for n, t in EXAMPLES.items() if n.endswith(".mmd")}
    batch.update({f"samples:{n}": t for n, t in SAMPLES.items() if n.endswith(".mmd")})
    batch["old:simple_worker"] = GROUP_BOXES  # proves the checks can fail
    return render_mermaid(batch, tmp_path_factory.mktemp("mmdc"))


def _names(diagrams: dict[str, str], suffix: str) -> list[str]:
    return sorted(name for name in diagrams if name.endswith(suffix))


# ---- the checks can fail ------------------------------------------------------------------

#: What smc used to write for simple_worker: edges to and from group boxes, and the
#: no_jobs self-loop's label drawn over new_job's.
GROUP_BOXES = """stateDiagram-v2
    state "STARTUP" as group_STARTUP {
        state "initializing" as initializing
    }
    state "MAIN LOOP" as group_MAINLOOP {
        state "waiting" as waiting
        state "processing" as processing
        state "finishing" as finishing
        waiting --> processing : new_job
        waiting --> waiting : no_jobs
        processing --> finishing : job_done
        processing --> waiting : error
        finishing --> waiting : job_completed
    }
    [*] --> group_STARTUP
    group_STARTUP --> group_MAINLOOP : initialized
"""


def test_the_layout_check_sees_group_boxes_and_overlaps(mermaid_svgs: dict[str, str]) -> None:
    rendered = parse_mermaid_svg(mermaid_svgs["old:simple_worker"])
    text = "\n".join(layout_problems(rendered, mermaid_edges(GROUP_BOXES)))
    assert "ends at no node" in text and "on the border of group group_MAINLOOP" in text, text
    assert re.search(r"label 'new_job' .* overlaps label 'no_jobs'", text), text


# ---- the examples: a clear picture ---------------------------------------------------------


@pytest.mark.parametrize("name", _names(EXAMPLES, ".mmd"))
def test_example_mermaid_is_clear(name: str, mermaid_svgs: dict[str, str]) -> None:
    rendered = parse_mermaid_svg(mermaid_svgs[f"examples:{name}"])
    expected = mermaid_edges(EXAMPLES[name])
    assert rendered.edges and len(rendered.edges) == len(expected)
    assert layout_problems(rendered, expected) == []


@pytest.mark.parametrize("name", _names(EXAMPLES, ".dot"))
def test_example_dot_is_clear(name: str) -> None:
    rendered = parse_graphviz_svg(render_dot(EXAMPLES[name]).decode("utf-8"))
    expected = dot_edges(EXAMPLES[name])
    assert rendered.edges and len(rendered.edges) == len(expected)
    assert layout_problems(rendered, expected) == []


# ---- the samples: right states, right labels ---------------------------------------------


def _connections(rendered: Rendered, expected: list[tuple[str, str, str]]) -> None:
    found, problems = edge_ends(rendered)
    assert problems == []
    assert sorted(found) == sorted(expected)


@pytest.mark.parametrize("name", _names(SAMPLES, ".mmd"))
def test_sample_mermaid_edges_connect_states(name: str, mermaid_svgs: dict[str, str]) -> None:
    rendered = parse_mermaid_svg(mermaid_svgs[f"samples:{name}"])
    _connections(rendered, mermaid_edges(SAMPLES[name]))


@pytest.mark.parametrize("name", _names(SAMPLES, ".dot"))
def test_sample_dot_edges_connect_states(name: str) -> None:
    rendered = parse_graphviz_svg(render_dot(SAMPLES[name]).decode("utf-8"))
    _connections(rendered, dot_edges(SAMPLES[name]))


# ---- pictures for people -------------------------------------------------------------------


def test_pictures_of_the_examples(tmp_path: Path) -> None:
    """PNGs of the simple_worker and task_worker overviews as both renderers draw them, in
    test-artifacts/, for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    sources = {m: EXAMPLES[f"names/{m}.mmd"] for m in SHOWN}
    render_mermaid(sources, tmp_path)  # checks mmdc works and writes the puppeteer config
    run = subprocess.run(
        [str(MMDC), "--quiet", "-p", str(tmp_path / "puppeteer.json"),
         "-i", str(tmp_path / "diagrams.md"), "-o", str(tmp_path / "out.png"),
         "-b", "white", "-s", "1.5"],
        capture_output=True, text=True, timeout=MMDC_TIMEOUT,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    pictures = []
    for index, machine in enumerate(sorted(SHOWN), start=1):
        mermaid_png = ARTIFACTS / f"{machine}.mermaid.png"
        shutil.copyfile(tmp_path / f"out-{index}.png", mermaid_png)
        dot_png = ARTIFACTS / f"{machine}.dot.png"
        dot_png.write_bytes(render_dot(EXAMPLES[f"names/{machine}.dot"], "png"))
        pictures += [mermaid_png, dot_png]
    for png in pictures:
        data = png.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000, png
