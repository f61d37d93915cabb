"""``benchmarks/figures.py``: the sign-test interval the README's benchmark figures quote."""

from __future__ import annotations

import importlib.util
import math
import random
from types import ModuleType

from tests.support.harness import REPO


def _figures() -> ModuleType:
    # The benchmarks are scripts, not a package: load the module from its file.
    spec = importlib.util.spec_from_file_location("figures", REPO / "benchmarks" / "figures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


median_interval = _figures().median_interval


def test_five_values_give_their_whole_range_at_94_percent() -> None:
    low, high, coverage = median_interval([3.0, -1.0, 7.0, 2.0, 5.0])
    assert (low, high) == (-1.0, 7.0)
    assert math.isclose(coverage, 1 - 2 / 32)


def test_eleven_values_give_the_third_from_each_end_at_93_percent() -> None:
    values = [float(v) for v in range(11)]
    random.Random(1).shuffle(values)
    low, high, coverage = median_interval(values)
    assert (low, high) == (2.0, 8.0)
    assert math.isclose(coverage, 1 - 2 * (1 + 11 + 55) / 2048)


def test_too_few_values_give_the_whole_range_with_its_lower_coverage() -> None:
    low, high, coverage = median_interval([4.0, 1.0])
    assert (low, high) == (1.0, 4.0)
    assert math.isclose(coverage, 0.5)


def test_the_interval_narrows_as_the_confidence_asked_for_falls() -> None:
    values = [float(v) for v in range(41)]
    wide = median_interval(values, confidence=0.99)
    narrow = median_interval(values, confidence=0.5)
    assert wide[2] >= 0.99 and narrow[2] >= 0.5
    assert wide[0] < narrow[0] <= 20.0 <= narrow[1] < wide[1]
