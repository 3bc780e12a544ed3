#!/usr/bin/env bash
# Set up (idempotent), then run the doorbell demo against a local mutual-TLS Mosquitto.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
printf '\033[1m[demo]\033[0m starting the simulated doorbell demo\n'
exec .venv/bin/python -m firmware_sim demo "$@"
