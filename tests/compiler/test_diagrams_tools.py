"""Every diagram smc writes is accepted by the real tools: Graphviz's ``dot`` binary and the
real Mermaid parser and renderer (the ``mermaid`` npm package in headless Chromium).

Needs, as CI installs them: ``apt-get install -y graphviz chromium`` and
``npm ci --prefix tests/js``. The run also leaves a screenshot of one rendered Mermaid
diagram in ``test-artifacts/`` for people to look at.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from smc.compiler.check import check_paths
from smc.compiler.diagrams import machine_diagrams, system_diagrams
from smc.compiler.model import Machine
from tests.support.corpus import CORPUS, require_corpus

#: Slow as a whole: its module fixtures start Chromium for Mermaid's parser and renderer (~15 s).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
INPUTS = ROOT / "tests" / "golden" / "diagrams" / "inputs"
JS = ROOT / "tests" / "js"
MERMAID_JS = JS / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
ARTIFACTS = ROOT / "test-artifacts"
BROWSER_TIMEOUT = 240  # seconds, for one headless Chromium run over every diagram


#: Where each kind of input comes from, and the label its diagrams' names start with: names
#: must not depend on where the checkout or the corpus happen to be.
SOURCES = {"examples": ROOT / "examples", "corpus": CORPUS, "inputs": INPUTS}


def _label(path: Path) -> str:
    """``examples/...``, ``corpus/...`` or ``inputs/...`` for a file or folder."""
    for name, folder in SOURCES.items():
        if path == folder or path.is_relative_to(folder):
            return (Path(name) / path.relative_to(folder)).as_posix()
    raise ValueError(path)


def _clean_machines(paths: list[Path]) -> list[tuple[str, list[Machine]]]:
    """(label, machines) for each file that checks without errors, one file at a time (the
    corpus holds copies of the same machine in several folders)."""
    found = []
    for path in paths:
        result = check_paths([str(path)])
        if not result.errors:
            found.append((_label(path), result.machines))
    return found


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():  # the corpus may be missing: its tests say so (require_corpus)
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml"))


def _all_diagrams() -> dict[str, str]:
    """Name -> text of every diagram for the examples, the corpus and the test inputs."""
    files = _yaml_files(ROOT / "examples") + _yaml_files(CORPUS) + _yaml_files(INPUTS)
    diagrams: dict[str, str] = {}
    for label, machines in _clean_machines(files):
        for machine in machines:
            for detail in ("names", "full"):
                for name, text in machine_diagrams(machine, detail=detail).items():
                    diagrams[f"{label}:{detail}:{name}"] = text
    # System diagrams of each folder checked together (as `smc build DIR` would draw them).
    folders = sorted({p.parent for p in files} | {ROOT / "examples", INPUTS})
    for folder in folders:
        result = check_paths([str(folder)])
        if result.machines and not result.errors:
            for name, text in system_diagrams(result.machines).items():
                diagrams[f"{_label(folder)}:{name}"] = text
    return diagrams


DIAGRAMS = _all_diagrams()
DOT_FILES = sorted(name for name in DIAGRAMS if name.endswith(".dot"))
MMD_FILES = sorted(name for name in DIAGRAMS if name.endswith(".mmd"))


def test_the_inputs_cover_examples_corpus_and_samples() -> None:
    require_corpus()
    assert any(":system.mmd" in name for name in MMD_FILES)
    assert any(name.startswith("corpus/statemachine-engine/") for name in DOT_FILES)
    assert any("odd_names" in name for name in DOT_FILES)
    assert any(".MAINLOOP." in name for name in MMD_FILES)  # per-group diagrams
    if _yaml_files(ROOT / "examples"):
        assert any(name.startswith("examples/") for name in DOT_FILES)


# ---- Graphviz ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", DOT_FILES)
def test_dot_accepts(name: str) -> None:
    dot = shutil.which("dot")
    assert dot is not None, "Graphviz's dot is not installed (apt-get install graphviz)"
    run = subprocess.run(
        [dot, "-Tsvg"], input=DIAGRAMS[name].encode("utf-8"), capture_output=True, timeout=60
    )
    stderr = run.stderr.decode("utf-8", "replace")
    assert run.returncode == 0, stderr
    assert "Warning" not in stderr and "Error" not in stderr, stderr
    assert run.stdout.lstrip().startswith(b"<?xml")


# ---- Mermaid in headless Chromium -------------------------------------------------------


def _chromium() -> str:
    for candidate in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(candidate)
        if found:
            return found
    pytest.fail("no Chromium to run Mermaid in: apt-get install -y chromium")


def _page(diagrams: dict[str, str], render: str | None) -> str:
    """The harness page: the diagrams as JSON, mermaid.min.js and tests/js/harness.js."""
    assert MERMAID_JS.is_file(), "the mermaid package is missing: npm ci --prefix tests/js"
    data = json.dumps(diagrams).replace("</", "<\\/")
    target = html.escape(render or "", quote=True)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>smc diagrams</title>
<style>body {{ font-family: sans-serif; margin: 16px; background: #fff; }}
#results {{ display: none; }}</style></head>
<body data-render="{target}">
<h3>{html.escape(render or "")}</h3>
<pre id="results"></pre><div id="rendered"></div>
<script id="diagrams" type="application/json">{data}</script>
<script src="{MERMAID_JS.as_uri()}"></script>
<script src="{(JS / "harness.js").as_uri()}"></script>
</body></html>
"""


@pytest.fixture(scope="module")
def browser_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="smc-mermaid-") as tmp:
        yield Path(tmp)


def _run_chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [
        _chromium(),
        "--headless",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--allow-file-access-from-files",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=60000",
        *extra,
        page.as_uri(),
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=BROWSER_TIMEOUT)


def mermaid_results(diagrams: dict[str, str], workdir: Path) -> dict[str, dict[str, object]]:
    """Parse and render every diagram with the real Mermaid; name -> {"ok", "error"}."""
    page = workdir / "parse.html"
    page.write_text(_page(diagrams, None), encoding="utf-8")
    run = _run_chromium(page, workdir / "profile-parse", "--dump-dom")
    match = re.search(r'<pre id="results" data-done="1">(.*?)</pre>', run.stdout, re.S)
    assert match, f"the harness did not finish: {run.stderr[-2000:]}"
    results: dict[str, dict[str, object]] = json.loads(html.unescape(match.group(1)))
    return results


BROKEN = "stateDiagram-v2\n    a --> : {\n"


@pytest.fixture(scope="module")
def mermaid(browser_dir: Path) -> dict[str, dict[str, object]]:
    batch = {name: DIAGRAMS[name] for name in MMD_FILES}
    batch["<known broken>"] = BROKEN  # proves the harness can fail
    return mermaid_results(batch, browser_dir)


def test_mermaid_harness_reports_errors(mermaid: dict[str, dict[str, object]]) -> None:
    assert "<harness>" not in mermaid, mermaid.get("<harness>")
    assert mermaid["<known broken>"]["ok"] is False
    assert "Parse error" in str(mermaid["<known broken>"]["error"])
    assert set(mermaid) == {*MMD_FILES, "<known broken>"}


@pytest.mark.parametrize("name", MMD_FILES)
def test_mermaid_accepts(name: str, mermaid: dict[str, dict[str, object]]) -> None:
    assert mermaid[name] == {"ok": True, "error": None}, mermaid[name]["error"]


def test_screenshot_of_a_rendered_diagram(browser_dir: Path) -> None:
    """Draws the golden machine's overview and keeps the picture in test-artifacts/."""
    name = next(n for n in MMD_FILES if n.endswith(":full:order_worker.mmd"))
    page = browser_dir / "render.html"
    page.write_text(_page({name: DIAGRAMS[name]}, name), encoding="utf-8")
    dom = _run_chromium(page, browser_dir / "profile-dom", "--dump-dom").stdout
    rendered = re.search(r'<div id="rendered">(.*?)</div>\s*<script', dom, re.S)
    assert rendered and "<svg" in rendered.group(1), "the diagram was not drawn"
    for label in ("MAIN LOOP", "charging", "after 5s", "any state", "bash → charged"):
        assert label in html.unescape(rendered.group(1)), label

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "diagram-order_worker.png"
    shot.unlink(missing_ok=True)
    run = _run_chromium(
        page, browser_dir / "profile-shot", f"--screenshot={shot}", "--window-size=1100,1400"
    )
    assert run.returncode == 0, run.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000


def test_dot_shows_a_tag_like_title_and_entities_as_written(tmp_path: Path) -> None:
    """Graphviz took a graph name like ``<b>x</b>`` for an HTML-like string (a syntax error)
    and decoded ``&amp;`` in plain labels; both now show as written."""
    import xml.etree.ElementTree as ET

    from smc.compiler.diagrams import render_image

    title = "</title><b>x</b>"
    states = ["a &amp; b", "c & d", "e &lt;f&gt;"]
    source = tmp_path / "m.yaml"
    source.write_text(
        json.dumps(
            {
                "name": title,
                "initial_state": states[0],
                "metadata": {"machine_name": "m"},
                "states": states,
                "transitions": [
                    {"from": states[0], "to": states[1], "event": "x &amp; y"},
                    {"from": states[1], "to": states[2], "event": "go"},
                ],
            }
        ),
        encoding="utf-8",
    )
    result = check_paths([str(source)])
    assert not result.errors, result.errors
    dot = machine_diagrams(result.machines[0])["m.dot"]
    svg = ET.fromstring(render_image(dot, "svg"))
    texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert title in texts
    assert set(states) <= set(texts) and "x &amp; y" in texts


def test_a_title_ending_in_a_backslash_stays_the_graph_s_name_and_no_dot(tmp_path: Path) -> None:
    """The graph's name was quoted but its backslashes left alone: a title ending in ``\\``
    closed the quotes early, and the rest of the line was read as DOT (here a node linking to
    ``javascript:``, and a second graph)."""
    import xml.etree.ElementTree as ET

    from smc.compiler.diagrams import render_image

    title = "{ x [label=Click URL=<javascript:alert(1)>] } digraph rest { //\\"
    source = tmp_path / "m.yaml"
    source.write_text(
        json.dumps(
            {
                "name": title,
                "initial_state": "a",
                "metadata": {"machine_name": "m"},
                "transitions": [{"from": "a", "to": "b", "event": "go"}],
            }
        ),
        encoding="utf-8",
    )
    result = check_paths([str(source)])
    assert not result.errors, result.errors
    dot = machine_diagrams(result.machines[0])["m.dot"]
    svg = ET.fromstring(render_image(dot, "svg"))
    namespace = "{http://www.w3.org/2000/svg}"
    assert [g.get("class") for g in svg.findall(f"{namespace}g")] == ["graph"]
    assert not list(svg.iter(f"{namespace}a"))
    texts = [t.text for t in svg.iter(f"{namespace}text")]
    assert title in texts and "Click" not in texts
    assert {"a", "b"} <= set(texts)


def test_controls_in_names_are_shown_escaped_and_dot_draws_them(tmp_path: Path) -> None:
    """A NUL in a state name ended DOT's quoted string (`dot`: syntax error, `smc diagram`
    failed), and ESC and bidi overrides reached the file raw."""
    import xml.etree.ElementTree as ET

    from smc.compiler.diagrams import render_image

    source = tmp_path / "m.yaml"
    source.write_text(
        json.dumps(
            {
                "initial_state": "a",
                "metadata": {"machine_name": "m"},
                "transitions": [{"from": "a", "to": "b\0c\x1b[31m\u202e", "event": "go"}],
            }
        ),
        encoding="utf-8",
    )
    result = check_paths([str(source)])
    assert not result.errors, result.errors
    dot = machine_diagrams(result.machines[0])["m.dot"]
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f\u202e]", dot)
    svg = ET.fromstring(render_image(dot, "svg"))
    texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert "b\\x00c\\x1b[31m\\u202e" in texts
