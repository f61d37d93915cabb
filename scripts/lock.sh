#!/usr/bin/env bash
# Refresh constraints.txt, the exact versions the test command installs (docs/ci.md, "The
# test environment"). Resolved by pip-tools' pip-compile from pyproject.toml's ranges for the
# dev, postgres and testing extras, with Python 3.11 (CI's). Existing pins are kept unless
# --upgrade (everything) or --upgrade-package NAME is given; new dependencies are added.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install -q --disable-pip-version-check 'pip-tools>=7.4'
CUSTOM_COMPILE_COMMAND="bash scripts/lock.sh" "$tools/venv/bin/pip-compile" \
  --quiet --strip-extras --extra dev --extra postgres --extra testing \
  --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
  --output-file constraints.txt "$@" pyproject.toml
