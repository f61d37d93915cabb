#!/usr/bin/env bash
# The test command (README): installs everything the tests need on a fresh Debian machine,
# then runs the whole suite and the static checks. CI (.ci/run) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

need_apt=()
command -v dot >/dev/null || need_apt+=(graphviz)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v node >/dev/null || need_apt+=(nodejs npm)
command -v ip >/dev/null || need_apt+=(iproute2)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Exact versions from the committed lock (constraints.txt, refreshed on purpose with
# scripts/lock.sh), so the suite runs against what it was last run against, not against
# whatever PyPI serves today.
log "pip install -c constraints.txt -e .[dev]"
python3 -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'

if [ -f tests/js/package-lock.json ]; then
  log "npm ci (Mermaid and its CLI for the diagram tests, pyright for the typing tests)"
  # Mermaid's CLI drives Debian's Chromium (installed above); puppeteer downloads no browser.
  PUPPETEER_SKIP_DOWNLOAD=1 npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
fi

log "ruff, black, mypy"
python3 -m ruff check smc tests benchmarks generated
python3 -m black --check smc tests benchmarks generated
python3 -m mypy smc generated

log "generated/ is fresh (smc build examples/ --check)"
python3 -m smc build examples/ --check

log "pytest (two processes, one module per process at a time: tests/README.md)"
python3 -m pytest -q -p no:cacheprovider --numprocesses 2 --dist loadscope \
  --hypothesis-profile=ci "$@"
