#!/usr/bin/env bash
# The main job (README): install smc, build examples/ into generated/, queue three jobs and run
# the simple_worker example on the embedded SQLite default (./smc.db). Ctrl-C stops the worker
# cleanly (its current job is released, not lost).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install -q --disable-pip-version-check -e .
python3 -m smc build examples/
for message in hello state machines; do
  python3 -m smc jobs add --type task --data "{\"message\": \"$message\"}"
done
echo "Worker running; in another shell try: smc status / smc jobs list / smc monitor (Ctrl-C stops it)"
exec python3 -m smc run examples/simple_worker/simple_worker.yaml
