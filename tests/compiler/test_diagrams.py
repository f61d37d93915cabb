"""What the diagrams show, the ids and escaping, determinism, image rendering and the
``smc diagram`` command (run as a real subprocess)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from smc.compiler.check import check_paths
from smc.compiler.diagrams import (
    DiagramError,
    IdAllocator,
    dot_label,
    machine_diagrams,
    mermaid_text,
    render_image,
    system_diagrams,
    unsent_events,
)
from smc.compiler.model import Machine
from tests.support.corpus import require_corpus

ROOT = Path(__file__).resolve().parents[2]
INPUTS = ROOT / "tests" / "golden" / "diagrams" / "inputs"


def machines(path: Path | str) -> list[Machine]:
    result = check_paths([str(path)])
    assert not result.errors, result.errors
    return result.machines


def machine(path: Path | str) -> Machine:
    (only,) = machines(path)
    return only


ORDER = machine(INPUTS / "order_worker.yaml")
FLAT_YAML = """
name: flat
initial_state: waiting
states: [waiting, working, done]
transitions:
  - {from: waiting, to: working, event: go}
  - {from: working, to: working, event: tick}
  - {from: working, to: waiting, event: timeout(5)}
  - {from: working, to: waiting, event: back}
  - {from: "*", to: done, event: stop}
"""


@pytest.fixture
def flat(tmp_path: Path) -> Machine:
    path = tmp_path / "flat.yaml"
    path.write_text(FLAT_YAML, encoding="utf-8")
    return machine(path)


def edges(mmd: str) -> list[tuple[str, str, str]]:
    found = []
    for line in mmd.splitlines():
        match = re.match(r"^\s*(\S+) --> (\S+)(?: : (.*))?$", line)
        if match:
            found.append((match.group(1), match.group(2), match.group(3) or ""))
    return found


# ---- the interface ----------------------------------------------------------------------


def test_paths_for_a_machine_without_groups(flat: Machine) -> None:
    assert list(machine_diagrams(flat)) == ["flat.dot", "flat.md", "flat.mmd"]


def test_paths_for_a_machine_with_groups() -> None:
    assert sorted(machine_diagrams(ORDER)) == sorted(
        ["order_worker.mmd", "order_worker.md", "order_worker.dot"]
        + [
            f"order_worker.{g}.{ext}"
            for g in ("MAINLOOP", "ERRORS", "END")
            for ext in ["mmd", "dot"]
        ]
    )


def test_system_paths() -> None:
    assert sorted(system_diagrams([ORDER])) == ["system.dot", "system.md", "system.mmd"]


# ---- what the pictures show -------------------------------------------------------------


def test_initial_and_final_states_are_marked(flat: Machine) -> None:
    out = machine_diagrams(flat)
    assert ("[*]", "waiting", "") in edges(out["flat.mmd"])
    assert ("done", "[*]", "") in edges(out["flat.mmd"])
    dot = out["flat.dot"]
    assert "__start -> waiting" in dot and "done -> __end" in dot
    assert re.search(r"__end \[.*shape=doublecircle", dot)


def test_a_wildcard_is_drawn_once_from_any_state(flat: Machine) -> None:
    out = machine_diagrams(flat)
    mmd_edges = edges(out["flat.mmd"])
    stops = [e for e in mmd_edges if e[2] == "stop"]
    assert stops == [("any_state_", "done", "stop")]
    assert 'state "any state" as any_state_' in out["flat.mmd"]
    assert out["flat.dot"].count("label=stop") == 1
    assert "| `*` | `stop` | `done` |" in out["flat.md"]


def test_timeouts_self_loops_and_shared_edges(flat: Machine) -> None:
    out = machine_diagrams(flat)
    mmd_edges = edges(out["flat.mmd"])
    # Mermaid: a self-loop is written inside its state's box, not drawn as an edge
    assert "working : ↻ tick" in out["flat.mmd"]
    assert not [e for e in mmd_edges if e[0] == e[1]]
    # two transitions between the same states: one edge, both events, in file order
    assert ("working", "waiting", "after 5s<br/>back") in mmd_edges
    assert "timeout(5)" not in out["flat.mmd"]
    assert "working -> working [label=tick]" in out["flat.dot"]
    assert 'label="after 5s\\nback"' in out["flat.dot"]


def test_a_timer_only_edge_is_dashed_in_dot() -> None:
    dot = machine_diagrams(ORDER)["order_worker.dot"]
    assert re.search(r'idle -> claiming \[label="after 0.5s" style=dashed\]', dot)


def test_groups_overview_and_one_diagram_per_group() -> None:
    out = machine_diagrams(ORDER)
    overview = out["order_worker.mmd"]
    assert 'state "MAIN LOOP" as group_MAINLOOP {' in overview
    assert overview.splitlines()[1:3] == ["stateDiagram-v2", "    direction LR"]
    # cross-group transitions go between the states, in Mermaid...
    assert ("charging", "failed", "after 5s<br/>error") in edges(overview)
    assert ("claiming", "backoff", "no_jobs") in edges(overview)
    assert ("booting", "idle", "booted") in edges(overview)
    assert ("[*]", "booting", "") in edges(overview)
    # ...and in Graphviz, inside clusters
    dot = out["order_worker.dot"]
    assert "subgraph cluster_group_MAINLOOP {" in dot
    assert 'charging -> failed [label="after 5s\\nerror"]' in dot
    group = out["order_worker.ERRORS.mmd"]
    assert 'state "ERRORS" as group_ERRORS {' in group
    assert ("charging", "failed", "after 5s<br/>error") in edges(group)
    assert re.search(r"class .*charging.* external", group)  # outside states are dashed
    assert "booting" not in group  # not connected to the group


def _composites(mmd: str) -> dict[str, str | None]:
    """State id -> the composite it is declared in (None at the top level)."""
    owner: dict[str, str | None] = {}
    stack: list[str] = []
    for line in mmd.splitlines():
        if match := re.match(r'^\s*state "[^"]*" as (\S+) \{$', line):
            owner[match.group(1)] = stack[-1] if stack else None
            stack.append(match.group(1))
        elif line.strip() == "}":
            stack.pop()
        elif match := re.match(r'^\s*state "[^"]*" as (\S+)$', line):
            owner[match.group(1)] = stack[-1] if stack else None
    return owner


def _corpus_and_inputs() -> list[Machine]:
    found = []
    for path in sorted(require_corpus().rglob("*.yaml")) + sorted(INPUTS.rglob("*.yaml")):
        result = check_paths([str(path)])
        if not result.errors:
            found.extend(result.machines)
    return found


@pytest.mark.parametrize("detail", ["names", "full"])
def test_mermaid_edges_link_states_never_groups(detail: Literal["names", "full"]) -> None:
    """Every Mermaid edge starts and ends at a state (or a start/end point), also when it
    crosses from one group to another: an edge to a group's box hides the state it reaches.
    (In a statechart an edge to a compound state ends at its box by design:
    test_diagrams_chart.py checks those.)"""
    checked = crossing = 0
    for each in (m for m in _corpus_and_inputs() if not m.is_chart):
        for name, text in machine_diagrams(each, detail=detail).items():
            if not name.endswith(".mmd"):
                continue
            owner = _composites(text)
            groups = {line.split(" as ")[1].split()[0] for line in text.splitlines() if "{" in line}
            for source, target, _ in edges(text):
                for end in (source, target):
                    assert end == "[*]" or (end in owner and end not in groups), (name, end)
                crossing += owner.get(source) != owner.get(target)
                checked += 1
    assert checked > 100 and crossing > 10


def test_full_detail_lists_actions_and_emitted_events() -> None:
    names_only = machine_diagrams(ORDER)["order_worker.mmd"]
    full = machine_diagrams(ORDER, detail="full")["order_worker.mmd"]
    assert "charging : bash → charged, declined" in full
    assert "claiming : check_database_queue → error, new_job, no_jobs" in full
    assert "bash" not in names_only
    assert (
        "bash → charged, declined\\l" in machine_diagrams(ORDER, detail="full")["order_worker.dot"]
    )


def test_markdown_page() -> None:
    page = machine_diagrams(ORDER)["order_worker.md"]
    overview = machine_diagrams(ORDER)["order_worker.mmd"]
    assert page.startswith("<!-- Generated by smc")
    assert "# Order worker\n" in page
    assert "Takes orders from the queue, charges them and tells the notifier\\." in page
    assert "```mermaid\n" + overview + "```" in page
    assert "### Group MAIN LOOP" in page
    assert "| `booting` (initial) | — | `log`<br>`bash` → `booted`, `error`<br>" in page
    assert "| `stopped` (final) | END |" in page
    assert "| `charged` | `charging` (`bash`) | `charging` |" in page
    assert "| `timeout(5)` | timer: after 5s in the state | `charging`, `backoff` |" in page
    assert "| `stop` | — | `*` (any state) |" in page
    assert "| `*` | `pause` | `idle` |" in page


# ---- ids and escaping -------------------------------------------------------------------


def test_ids_are_plain_unique_and_deterministic() -> None:
    allocator = IdAllocator()
    ids = allocator.assign(["a b", "a_b", "a-b", "end", "日本", "中文", "9x", "état"])
    assert ids == {
        "a b": "a_b_2", "a_b": "a_b", "a-b": "a_b_3", "end": "end_", "日本": "s",
        "中文": "s_2", "9x": "n_9x", "état": "etat",
    }  # fmt: skip


def test_odd_names_keep_to_safe_ids() -> None:
    odd = machine(INPUTS / "odd_names.yaml")
    for name, text in machine_diagrams(odd, detail="full").items():
        if name.endswith(".mmd"):
            for line in text.splitlines()[2:]:
                if match := re.match(r'^\s*state "([^"]*)" as (\S+)', line):
                    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", match.group(2)), line
                    assert '"' not in match.group(1)
                elif " --> " in line:
                    source, rest = line.strip().split(" --> ", 1)
                    assert re.fullmatch(r"\[\*\]|[A-Za-z_][A-Za-z0-9_]*", source), line
                    assert ";" not in rest.replace("#", "").split(" : ")[0], line


_ENTITY = re.compile(r"#(\d+);")
_UNSAFE_IN_MERMAID = set("\"';:{}[]<>%|`\\\n\r")


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_mermaid_text_leaves_no_syntax_and_decodes_back(text: str) -> None:
    encoded = mermaid_text(text)
    bare = _ENTITY.sub("", encoded)
    assert "#" not in bare and not (_UNSAFE_IN_MERMAID - {"'"}) & set(bare)
    decoded = _ENTITY.sub(lambda m: chr(int(m.group(1))), encoded)
    assert decoded == re.sub(r"[\r\n\t]", " ", text)


def _one_line(text: str) -> str:
    """``text`` as a label's line shows it: a line break in it (U+2028 LINE SEPARATOR and
    U+2029 included, as ``str.splitlines`` splits) is a space (``dot_label``)."""
    return " ".join(text.splitlines())


@settings(max_examples=40, deadline=None)
@given(
    st.text(
        st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_categories=("Cs", "Cc")),
        min_size=1,
        max_size=30,
    ).filter(lambda s: (line := _one_line(s)).strip() == line != "" and "  " not in line)
)
@example("0\u20280")  # a line separator: a space, not the end of the label (CI found it)
def test_dot_labels_show_exactly_the_name(text: str) -> None:
    """Round trip through the real dot: the SVG's text is the name, whatever it holds, a line
    break in it shown as a space."""
    import graphviz

    graph = graphviz.Digraph()
    graph.node("n", label=dot_label([text]))
    svg = render_image(graph.source, "svg")
    texts = [t.text for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text") if t.text]
    assert texts == [_one_line(text)]


def test_same_input_same_bytes() -> None:
    first = {**machine_diagrams(ORDER, detail="full"), **system_diagrams(machines(INPUTS))}
    again_machine = machine(INPUTS / "order_worker.yaml")
    second = {
        **machine_diagrams(again_machine, detail="full"),
        **system_diagrams(machines(INPUTS)),
    }
    assert first == second
    text = "".join(first.values())
    assert not re.search(r"20\d\d-\d\d-\d\d|/tmp/|/work/", text)


def test_same_bytes_in_a_fresh_interpreter() -> None:
    """Hash randomisation must not change the output (set and dict order)."""
    code = (
        "import sys, hashlib; from smc.compiler.check import check_paths;"
        "from smc.compiler.diagrams import machine_diagrams, system_diagrams;"
        f"ms = check_paths([{str(INPUTS)!r}]).machines;"
        "out = {k: v for m in ms for k, v in machine_diagrams(m, detail='full').items()};"
        "out.update(system_diagrams(ms));"
        "print(hashlib.sha256(repr(sorted(out.items())).encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(digests) == 1


# ---- the system diagram -----------------------------------------------------------------


def test_system_edges_and_unsent_events() -> None:
    all_machines = machines(INPUTS)
    names = [m.name for m in all_machines]
    unsent = {names[i]: events for i, events in unsent_events(all_machines).items()}
    # order_charged is sent by order_worker; success is what notifier's own complete_job returns
    assert unsent["notifier"] == ["shutdown"]
    # timeouts fire by themselves; error and booted come from its own actions
    assert unsent["order_worker"] == ["retry", "stop", "pause"]
    out = system_diagrams(all_machines)
    assert '    order_worker -->|"start_fsm<br/>send order_charged"| notifier' in out["system.mmd"]
    assert 'order_worker -> notifier [label="start_fsm\\nsend order_charged"]' in out["system.dot"]
    assert re.search(r"class .*notifier.* unsent", out["system.mmd"])


def test_system_targets_with_placeholders_and_unknown_machines(tmp_path: Path) -> None:
    (tmp_path / "boss.yaml").write_text(
        """
name: boss
initial_state: a
states: [a, b]
transitions:
  - {from: a, to: b, event: event_sent}
actions:
  a:
    - {type: send_event, target_machine: "worker_{n}", event_type: go}
    - {type: send_event, target_machine: elsewhere, event_type: go}
""",
        encoding="utf-8",
    )
    (tmp_path / "worker.yaml").write_text(
        """
name: A worker
metadata: {machine_name: worker_1}
initial_state: idle
states: [idle, busy]
transitions:
  - {from: idle, to: busy, event: go}
""",
        encoding="utf-8",
    )
    found = machines(tmp_path)
    out = system_diagrams(found)
    assert 'boss -->|"send go"| worker_1' in out["system.mmd"]
    assert 'ext_elsewhere["elsewhere<br/>(not built here)"]' in out["system.mmd"]
    assert unsent_events(found) == {}


# ---- images -----------------------------------------------------------------------------


def test_render_image_svg_and_png(flat: Machine) -> None:
    dot = machine_diagrams(flat)["flat.dot"]
    svg = render_image(dot, "svg")
    assert svg.lstrip().startswith(b"<?xml") and b">working<" in svg
    assert render_image(dot, "png").startswith(b"\x89PNG\r\n\x1a\n")


def test_render_image_without_dot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DiagramError) as caught:
        render_image("digraph { a -> b }", "svg")
    message = str(caught.value)
    assert "dot" in message and "\n" not in message


def test_render_image_reports_bad_dot_in_one_line() -> None:
    with pytest.raises(DiagramError) as caught:
        render_image("digraph { a -> ", "svg")
    assert "\n" not in str(caught.value) and "syntax error" in str(caught.value)


# ---- smc diagram ------------------------------------------------------------------------


def smc(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "smc", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_writes_every_format_and_only_changed_files(tmp_path: Path) -> None:
    out = tmp_path / "diagrams"
    run = smc("diagram", str(INPUTS), "-o", str(out), "--format", "all")
    assert run.returncode == 0, run.stderr
    written = sorted(p.name for p in out.iterdir())
    for stem in ("order_worker", "order_worker.MAINLOOP", "notifier", "system"):
        for ext in ("mmd", "dot", "svg", "png"):
            assert f"{stem}.{ext}" in written
    assert "order_worker.md" in written and "system.md" in written
    assert (out / "order_worker.mmd").read_text(encoding="utf-8") == machine_diagrams(ORDER)[
        "order_worker.mmd"
    ]
    assert f"wrote {len(written)} file(s), 0 unchanged" in run.stderr

    (out / "order_worker.dot").write_text("stale", encoding="utf-8")
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = smc("diagram", str(INPUTS), "-o", str(out), "--format", "all")
    assert again.returncode == 0, again.stderr
    assert f"wrote 1 file(s), {len(written) - 1} unchanged" in again.stderr
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    changed = {name for name in after if after[name] != before[name]}
    assert changed == {"order_worker.dot"}


def test_cli_default_formats_and_full_detail(tmp_path: Path) -> None:
    run = smc("diagram", str(INPUTS / "order_worker.yaml"), "-o", str(tmp_path), "--detail", "full")
    assert run.returncode == 0, run.stderr
    suffixes = {p.suffix for p in tmp_path.iterdir()}
    assert suffixes == {".mmd", ".md", ".dot"}
    assert "bash → charged" in (tmp_path / "order_worker.mmd").read_text(encoding="utf-8")


def test_cli_without_dot_says_so_in_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    out = tmp_path / "out"
    run = smc("diagram", str(INPUTS), "-o", str(out), "--format", "svg", path=str(empty))
    assert run.returncode == 1
    lines = [line for line in run.stderr.splitlines() if line.startswith("smc diagram")]
    assert lines == [lines[0]] and "dot" in lines[0] and "Traceback" not in run.stderr
    assert not out.exists()


def test_cli_stops_on_check_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ninitial_state: nowhere\nstates: [a]\n", encoding="utf-8")
    out = tmp_path / "out"
    run = smc("diagram", str(bad), "-o", str(out))
    assert run.returncode == 1
    assert "error[" in run.stderr and "no diagrams written" in run.stderr
    assert not out.exists()
