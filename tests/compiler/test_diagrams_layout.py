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

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from smc.compiler.check import check_paths
from smc.compiler.diagrams import Detail, machine_diagrams, system_diagrams
from tests.support.diagrams import (
    MMDC,
    MMDC_TIMEOUT,
    dot_edges,
    mermaid_edges,
    render_dot,
    render_mermaid,
)
from tests.support.svg import (
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
ARTIFACTS = ROOT / "test-artifacts"
SHOWN = ("simple_worker", "task_worker")  # kept as PNGs in test-artifacts/


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
#: The examples that are statecharts: an edge into a compound state ends at its box by
#: design, so they are checked by test_diagrams_chart.py (nesting, edges), not here.
CHART_EXAMPLES = frozenset(
    machine.name for machine in check_paths([str(ROOT / "examples")]).machines if machine.is_chart
)


def _flat(name: str) -> bool:
    return name.split("/")[-1].rsplit(".", 1)[0] not in CHART_EXAMPLES


SAMPLES = _diagrams(INPUTS, ("names", "full"))


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


@pytest.mark.parametrize("name", [n for n in _names(EXAMPLES, ".mmd") if _flat(n)])
def test_example_mermaid_is_clear(name: str, mermaid_svgs: dict[str, str]) -> None:
    rendered = parse_mermaid_svg(mermaid_svgs[f"examples:{name}"])
    expected = mermaid_edges(EXAMPLES[name])
    assert rendered.edges and len(rendered.edges) == len(expected)
    assert layout_problems(rendered, expected) == []


@pytest.mark.parametrize("name", [n for n in _names(EXAMPLES, ".dot") if _flat(n)])
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
