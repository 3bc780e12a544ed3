#!/usr/bin/env bash
# Set up (idempotent), then run the whole test suite: unit, simulator and integration
# tests against a real Mosquitto over mutual TLS. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
printf '\033[1m[test]\033[0m running pytest (unit, simulator, broker integration)\n'
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "[test] pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$rc"
