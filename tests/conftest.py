"""Shared test fixtures: where the project and the compatibility corpus are."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: The compatibility corpus, beside the repository (CI clones the repo with shared/ next to it).
CORPUS = PROJECT_ROOT.parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"the compatibility corpus is missing: expected it at {CORPUS}")
    return CORPUS
