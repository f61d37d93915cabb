"""Helpers the tests share (no tests here): the runner of real ``smc`` processes
(:mod:`.harness`), where the compatibility corpus is (:mod:`.corpus`), the two store backends
(:mod:`.backends`), the examples compiled into a package (:mod:`.examples`), the geometry of a
rendered diagram (:mod:`.svg`) and the machine files several tests run (:mod:`.machines`)."""

from __future__ import annotations

from pathlib import Path

#: The repository's root folder.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
