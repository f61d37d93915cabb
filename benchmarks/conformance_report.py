"""The W3C SCXML conformance table (docs/conformance.md): every CORE and BEYOND-CORE test run
through smc (``tests/support/w3c.py``: import, check, build, drive), beside
python-statemachine 3.2.2's result (it marks test187, test229, test236, test240 and test554,
all <invoke>, as failing). Prints a Markdown table and the counts.

    python3 benchmarks/conformance_report.py        # SMC_W3C_DIR to read the tests elsewhere
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conformance.test_w3c_scxml import FEATURES, XFAIL
from tests.support.w3c import listed_tests, run_test

PYTHON_STATEMACHINE_FAILS = {"test187", "test229", "test236", "test240", "test554"}


def main() -> int:
    # No options: --help says what it measures rather than running it.
    argparse.ArgumentParser(description=__doc__).parse_args()
    rows = []
    counts = {"core": 0, "core_pass": 0, "beyond": 0, "beyond_pass": 0}
    with tempfile.TemporaryDirectory() as directory:
        for kind, name in (("core", "CORE.txt"), ("beyond", "BEYOND-CORE.txt")):
            for test, uses in listed_tests(name):
                outcome = run_test(test, Path(directory))
                counts[kind] += 1
                if outcome.result == "pass":
                    counts[f"{kind}_pass"] += 1
                    reason = ""
                elif test in XFAIL:
                    reason = "; ".join(FEATURES[f] for f in XFAIL[test])
                else:
                    first = [line for line in outcome.detail.splitlines() if "error[" in line]
                    reason = (first[0].split(": ", 2)[-1] if first else outcome.detail)[:110]
                    reason = reason or uses
                theirs = "fail" if test in PYTHON_STATEMACHINE_FAILS else "pass"
                result = "pass" if outcome.result == "pass" else outcome.result
                reason = reason.replace("|", "\\|")
                rows.append(
                    f"| {test} | {'yes' if kind == 'core' else 'no'} | {result} | "
                    f"{reason} | {theirs} |"
                )
    print("| test | core | smc | reason | python-statemachine 3.2.2 |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    print(
        f"CORE: {counts['core_pass']}/{counts['core']} pass; "
        f"BEYOND-CORE: {counts['beyond_pass']}/{counts['beyond']} pass"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
