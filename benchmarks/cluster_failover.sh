#!/usr/bin/env bash
# The failover table of docs/benchmarks.md: `python -m firmware_sim fleet --cluster` on
# Debian's nats-server and PyPI's, for each role of the node stopped, at N devices
# (default 200). Prints each run's failover lines; a run takes about a minute.
#   bash benchmarks/cluster_failover.sh [DEVICES] [RUNS_PER_CASE]
set -euo pipefail
cd "$(dirname "$0")/.."
devices=${1:-200}
runs=${2:-1}
for server in /usr/sbin/nats-server .venv/bin/nats-server; do
  for case in "session-leader kill" "msgs-leader kill" "other kill" "session-leader term"; do
    set -- $case
    for run in $(seq "$runs"); do
      echo "=== $server --kill $1 --stop $2 ($devices devices, run $run)"
      EDGE_NATS_SERVER=$server .venv/bin/python -m firmware_sim fleet --devices "$devices" \
        --messages 6 --cluster --kill "$1" --stop "$2" 2>/dev/null \
        | grep -E "^devices|^nats-server|^  devices on" || echo "(run failed)"
    done
  done
done
