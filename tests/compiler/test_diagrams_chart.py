"""Statecharts drawn: nested states, parallel regions, history, eventless and internal
transitions, in Mermaid and DOT (docs/diagrams.md, Statecharts).

The inputs are the issue's example chart (verbatim), a chart with every mark the diagrams
draw (tests/golden/charts/inputs/) and the corpus's nested file. Their Mermaid is drawn by
Mermaid's CLI (``mmdc``) and their DOT by Graphviz's ``dot``, and the SVGs are measured
(tests/support/svg.py): every state lies inside the box of the state it is nested in. The
bytes are golden files; after an intended change, regenerate them and review the diff:

    SMC_UPDATE_GOLDEN=1 pytest tests/compiler/test_diagrams_chart.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from smc.compiler.check import check_paths
from smc.compiler.diagrams import machine_diagrams
from smc.compiler.diagrams.model import machine_ids
from smc.compiler.model import Machine
from tests.support.cli import run_smc
from tests.support.corpus import CORPUS, require_corpus
from tests.support.diagrams import mermaid_edges, render_mermaid
from tests.support.golden import check_golden_file, check_golden_set
from tests.support.svg import Box, Rendered, parse_graphviz_svg, parse_mermaid_svg

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "charts"
INPUTS = GOLDEN / "inputs"
ISSUE = INPUTS / "issue_chart.yaml"
FEATURES = INPUTS / "chart_features.yaml"
FACE = CORPUS / "statemachine-engine" / "tools" / "test_face_processor.yaml"
EXAMPLE = ROOT / "examples" / "download_worker" / "download_worker.yaml"


def _machine(path: Path) -> Machine:
    result = check_paths([str(path)])
    assert not result.errors, result.errors
    (machine,) = result.machines
    return machine


def _diagrams(path: Path) -> dict[str, str]:
    """``detail/name`` -> text of a machine's diagrams, at both detail levels."""
    machine = _machine(path)
    return {
        f"{detail}/{name}": text
        for detail in ("names", "full")
        for name, text in machine_diagrams(machine, detail=detail).items()
    }


# ---- golden files ------------------------------------------------------------------------

RENDERED = {name: text for path in (ISSUE, FEATURES) for name, text in _diagrams(path).items()}


def test_golden_files_are_exactly_the_rendered_set() -> None:
    check_golden_set(GOLDEN, ("names", "full"), RENDERED)


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_golden(name: str) -> None:
    check_golden_file(GOLDEN, name, RENDERED[name])


# ---- what the texts say --------------------------------------------------------------------


def test_the_issue_chart_in_mermaid() -> None:
    lines = RENDERED["names/issue_chart.mmd"].splitlines()
    start = lines.index('    state "active" as active {')
    assert lines[start + 1] == "        [*] --> idle"  # the compound's own initial mark
    assert '        state "busy" as busy {' in lines[start:]
    assert "            [*] --> fetching" in lines
    assert '        state "H" as active_hist' in lines
    regions = lines.index('    state "running · ↻ tick (internal)" as running {')
    assert lines[regions + 1] == '        state "left" as left_ {'
    assert "        --" in lines[regions:]  # parallel regions
    assert "    parsing --> idle" in lines  # eventless: no label
    assert "    active --> done : stop" in lines  # from the compound's box
    assert "    [*] --> active" in lines and "    done --> [*]" in lines
    assert "    class active_hist history" in lines


def test_the_issue_chart_in_dot() -> None:
    text = RENDERED["full/issue_chart.dot"]
    assert "compound=true" in text
    for cluster in ("active", "busy", "running", "left_", "right_"):
        assert f"subgraph cluster_{cluster} {{" in text
    assert 'label="active\\nlog\\nexit: log"' in text  # a compound's actions in its title
    assert 'label="running\\n↻ tick (internal)"' in text
    assert text.count('style="rounded,dashed"') == 2  # the two regions
    assert "__start__active -> idle" in text and "__start__busy -> fetching" in text
    assert "active_hist [label=H fontsize=10 shape=circle" in text
    # to and from a compound: clipped at its cluster
    assert "__start -> __start__active [lhead=cluster_active]" in text
    assert "parsing -> done [ltail=cluster_active xlabel=stop]" in text
    assert "idle -> __start__busy [label=go lhead=cluster_busy]" in text
    assert "parsing -> idle\n" in text


def test_every_chart_mark() -> None:
    mmd = RENDERED["names/chart_features.mmd"]
    dot = RENDERED["names/chart_features.dot"]
    assert 'state "H*" as player_hist' in mmd and 'player_hist [label="H*"' in dot
    # the deep history's default, unlabelled
    assert "        player_hist --> playing\n" in mmd
    assert "player_hist -> __start__playing [lhead=cluster_playing]" in dot
    # an internal transition into the compound's own child: in the compound's title
    assert 'state "playing · reload (internal) → loading" as playing {' in mmd
    assert 'label="playing\\nreload (internal) → loading"' in dot
    assert "playing --> loading" not in mmd
    # a final state inside a compound ends at the compound's own end point
    assert "            finished --> [*]" in mmd and "finished -> __end__playing" in dot
    # several targets: an edge to each
    assert "sd --> hd : upgrade" in mmd and "    sd --> stereo : upgrade" in mmd
    # between compounds, the timer, the wildcard, a self-loop
    assert (
        "finished -> __start__audio [lhead=cluster_tuning ltail=cluster_player xlabel=tune]" in dot
    )
    assert "buffering --> rendering : after 2s" in mmd and "rendering : ↻ frame" in mmd
    assert "any_state_ --> powered_down : power" in mmd
    md = RENDERED["names/chart_features.md"]
    assert "| `loading` | — (eventless) | `streaming` |  |" in md
    assert "| `sd` | `upgrade` | `hd`, `stereo` |  |" in md
    assert "| `player_hist` (deep history → `playing`) | `player` |" in md


# ---- drawn by the real tools ---------------------------------------------------------------


def _sources() -> dict[str, Path]:
    sources = {"issue": ISSUE, "features": FEATURES, "example": EXAMPLE}
    if FACE.is_file():  # the corpus may be missing: test_the_corpus_file_is_drawn says so
        sources["face"] = FACE
    return sources


DRAWN = {
    f"{label}:{name}": text
    for label, path in _sources().items()
    for name, text in _diagrams(path).items()
}
MMD = sorted(name for name in DRAWN if name.endswith(".mmd"))
DOT = sorted(name for name in DRAWN if name.endswith(".dot"))


def test_the_corpus_file_is_drawn() -> None:
    require_corpus()
    assert "face:names/test_face_processor.mmd" in MMD
    assert "face:full/test_face_processor.dot" in DOT


def _inside(inner: Box, outer: Box, slack: float = 1.0) -> bool:
    return (
        inner.x0 >= outer.x0 - slack
        and inner.y0 >= outer.y0 - slack
        and inner.x1 <= outer.x1 + slack
        and inner.y1 <= outer.y1 + slack
    )


def _nesting_problems(machine: Machine, rendered: Rendered, ids: dict[str, str]) -> list[str]:
    """Every state drawn (a box, or a cluster for a composite), inside its parent's cluster."""
    problems = []

    def box(state: str) -> Box | None:
        node_id = ids[state]
        if machine.state(state).kind in ("compound", "parallel"):
            return rendered.clusters.get(node_id)
        node = rendered.nodes.get(node_id)
        return None if node is None else node.box

    for state in machine.states:
        own = box(state.name)
        if own is None:
            problems.append(f"{state.name} is not drawn")
        elif state.parent is not None:
            outer = box(state.parent)
            if outer is None or not _inside(own, outer):
                problems.append(f"{state.name} {own} is not inside {state.parent} {outer}")
    return problems


def _machine_of(name: str) -> Machine:
    return _machine(_sources()[name.split(":", 1)[0]])


def _ids(machine: Machine) -> dict[str, str]:
    return dict(machine_ids(machine).states)


#: The issue chart with its eventless edge written inside `active`'s block, as a first draft
#: of this writer did: Mermaid then draws `parsing` in `active`, outside `busy`.
MISPLACED = (
    DRAWN["issue:names/issue_chart.mmd"]
    .replace("    parsing --> idle\n", "")
    .replace(
        "        idle --> busy : go\n", "        idle --> busy : go\n        parsing --> idle\n"
    )
)


@pytest.fixture(scope="module")
def mermaid_svgs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every chart's Mermaid diagram as mmdc draws it (mmdc fails on one it cannot parse)."""
    batch = {name: DRAWN[name] for name in MMD}
    batch["<misplaced>"] = MISPLACED  # proves the nesting check can fail
    return render_mermaid(batch, tmp_path_factory.mktemp("mmdc"))


@pytest.mark.slow
def test_the_nesting_check_sees_a_misplaced_state(mermaid_svgs: dict[str, str]) -> None:
    assert DRAWN["issue:names/issue_chart.mmd"] != MISPLACED
    machine = _machine(ISSUE)
    rendered = parse_mermaid_svg(mermaid_svgs["<misplaced>"])
    problems = _nesting_problems(machine, rendered, _ids(machine))
    assert len(problems) == 1 and problems[0].startswith("parsing "), problems


@pytest.mark.slow
@pytest.mark.parametrize("name", MMD)
def test_mermaid_draws_the_tree(name: str, mermaid_svgs: dict[str, str]) -> None:
    machine = _machine_of(name)
    rendered = parse_mermaid_svg(mermaid_svgs[name])
    assert _nesting_problems(machine, rendered, _ids(machine)) == []
    expected = mermaid_edges(DRAWN[name])
    assert len(rendered.edges) == len(expected)
    drawn_labels = sorted(" ".join(e.label.split()) for e in rendered.edges)
    # a label of several lines (two events on one edge) is compared word by word
    assert drawn_labels == sorted(" ".join(label.split()) for _s, _t, label in expected)


def _dot_svg(source: str) -> str:
    dot = shutil.which("dot")
    assert dot is not None, "Graphviz's dot is not installed (apt-get install graphviz)"
    run = subprocess.run([dot, "-Tsvg"], input=source.encode(), capture_output=True, timeout=60)
    stderr = run.stderr.decode("utf-8", "replace")
    assert run.returncode == 0 and "Warning" not in stderr and "Error" not in stderr, stderr
    return run.stdout.decode("utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("name", DOT)
def test_dot_draws_the_tree(name: str) -> None:
    machine = _machine_of(name)
    rendered = parse_graphviz_svg(_dot_svg(DRAWN[name]))
    assert _nesting_problems(machine, rendered, _ids(machine)) == []
    assert len(rendered.edges) == DRAWN[name].count(" -> ")
    # every compound has its start point, inside its cluster
    for state in machine.states:
        if state.kind == "compound":
            point = rendered.nodes[f"__start__{_ids(machine)[state.name]}"]
            assert point.kind == "point"
            assert _inside(point.box, rendered.clusters[_ids(machine)[state.name]])


# ---- smc diagram ---------------------------------------------------------------------------


def _smc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_smc(*args, cwd=cwd)


@pytest.mark.slow
def test_smc_diagram_draws_a_chart_and_smc_build_compiles_it(tmp_path: Path) -> None:
    out = tmp_path / "diagrams"
    drawn = _smc(
        "diagram", "--format", "all", "-o", str(out), str(ISSUE), str(FEATURES), cwd=tmp_path
    )
    assert drawn.returncode == 0, drawn.stderr
    assert "SMC076" not in drawn.stdout + drawn.stderr
    for stem in ("issue_chart", "chart_features"):
        for suffix in ("mmd", "md", "dot", "svg", "png"):
            assert (out / f"{stem}.{suffix}").is_file(), f"{stem}.{suffix}"
    assert (out / "issue_chart.mmd").read_text(encoding="utf-8") == RENDERED[
        "names/issue_chart.mmd"
    ]
    built = _smc("build", "-o", str(tmp_path / "charts"), str(ISSUE), cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    # the build draws the same diagram as `smc diagram`, beside the compiled module
    assert (tmp_path / "charts" / "diagrams" / "issue_chart.mmd").read_text(
        encoding="utf-8"
    ) == RENDERED["names/issue_chart.mmd"]
    walked = subprocess.run(
        [
            sys.executable,
            "-c",
            "from charts import IssueChart as M; m = M(); m.go(); "
            "print(sorted(map(str, m.configuration)))",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert walked.stdout.strip() == "['active', 'busy', 'fetching']", walked.stderr


def test_smc_diagram_draws_the_corpus_chart(tmp_path: Path) -> None:
    require_corpus()
    drawn = _smc("diagram", "-o", str(tmp_path), str(FACE), cwd=tmp_path)
    assert drawn.returncode == 0, drawn.stderr
    assert (tmp_path / "test_face_processor.mmd").is_file()
    assert "subgraph cluster_POST_PROCESSING" in (tmp_path / "test_face_processor.dot").read_text(
        encoding="utf-8"
    )
