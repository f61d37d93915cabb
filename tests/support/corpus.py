"""Where the compatibility corpus is: ``$SMC_CORPUS``, or ``../shared/corpus`` beside the
repository (CI clones the repository with ``shared/`` next to it). A relative
``$SMC_CORPUS`` is taken from the repository root.

Without the corpus the suite still collects and runs: each test that needs it fails with
one line saying where it looked (``require_corpus``), and the others pass.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _corpus_path() -> Path:
    configured = os.environ.get("SMC_CORPUS")
    if not configured:
        return PROJECT_ROOT.parent / "shared" / "corpus"
    return PROJECT_ROOT / Path(configured).expanduser()  # an absolute path stays as it is


CORPUS = _corpus_path()


def corpus_present() -> bool:
    return CORPUS.is_dir()


def require_corpus() -> Path:
    """The corpus folder; fails the calling test in one line when it is missing."""
    if not corpus_present():
        pytest.fail(
            f"the compatibility corpus is missing: looked in {CORPUS} "
            "(set SMC_CORPUS to its folder; see the README)",
            pytrace=False,
        )
    return CORPUS
