"""The W3C SCXML 1.0 conformance tests (python datamodel), run through smc: each ``.scxml`` is
imported (``smc.compiler.loader.scxml``), checked, compiled into its class in a temporary
directory and driven to the end (``tests/support/w3c.py``); it passes iff the machine ends
in ``pass``. The tests are read from ``$SMC_W3C_DIR`` (default: ``../shared/conformance/
w3c-scxml`` beside the repository), never copied here.

- ``CORE.txt`` (101 tests, the statechart core): each must pass. Those that do not yet are
  listed in ``XFAIL`` with the feature they need, as strict expected failures, so a test that
  starts to pass forces the list to be updated. A test that cannot be imported or built fails
  with the diagnostics, so it is visible why.
- ``BEYOND-CORE.txt`` (59 tests using ``<invoke>``, ``<foreach>``, ``<param>``, ...): each
  either passes or is refused with a diagnostic naming a feature the test uses.

``benchmarks/conformance_report.py`` prints the table (docs/conformance.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.w3c import listed_tests, run_test, w3c_dir

#: What the core tests that fail need: the feature, and whose work it is.
FEATURES: dict[str, str] = {}

#: Core tests that do not pass yet, with the features they need (docs/conformance.md).
XFAIL: dict[str, tuple[str, ...]] = {}

CORE = listed_tests("CORE.txt")
BEYOND = listed_tests("BEYOND-CORE.txt")

pytestmark = pytest.mark.skipif(
    not (w3c_dir() / "CORE.txt").is_file(),
    reason=f"the W3C SCXML tests are not at {w3c_dir()} (set SMC_W3C_DIR)",
)


def _core_params() -> list[object]:
    params: list[object] = []
    for test, _ in CORE:
        marks = []
        if test in XFAIL:
            reason = "; ".join(FEATURES[f] for f in XFAIL[test])
            marks.append(pytest.mark.xfail(strict=True, reason=reason))
        params.append(pytest.param(test, id=test, marks=marks))
    return params


def test_the_lists_are_there() -> None:
    assert len(CORE) == 101
    assert len(BEYOND) == 59
    assert set(XFAIL) <= {test for test, _ in CORE}
    assert {f for needs in XFAIL.values() for f in needs} <= set(FEATURES)


@pytest.mark.parametrize("test", _core_params())
def test_core(test: str, tmp_path: Path) -> None:
    outcome = run_test(test, tmp_path)
    assert outcome.result == "pass", f"{test}: {outcome.result}\n{outcome.detail}"


#: What each feature BEYOND-CORE.txt lists is called in the import's diagnostics.
FEATURE_WORDS = {
    "foreach": "<foreach>",
    "param": "<param>",
    "content": "<content>",
    "invoke": "<invoke>",
    "cancel": "<cancel>",
    "donedata": "<donedata>",
    "script": "<script>",
    "finalize": "<finalize>",
}


@pytest.mark.parametrize("test,uses", [pytest.param(t, u, id=t) for t, u in BEYOND])
def test_beyond_core(test: str, uses: str, tmp_path: Path) -> None:
    outcome = run_test(test, tmp_path)
    if outcome.result == "pass":
        return
    features = uses.removeprefix("uses:").split()
    assert outcome.result == "refused", f"{test}: {outcome.result}\n{outcome.detail}"
    assert "error[SMC101]" in outcome.detail
    named = [f for f in features if FEATURE_WORDS[f] in outcome.detail]
    assert named, f"{test} uses {features}; the diagnostics name none:\n{outcome.detail}"
