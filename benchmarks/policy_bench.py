"""Benchmark: policy decisions per second for a typical alarm snapshot candidate.

.venv/bin/python benchmarks/policy_bench.py
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime

from edge.model import Purpose
from edge.policy.catalogue import FieldName
from edge.policy.consent import ConsentState
from edge.policy.gate import Candidate, decide
from edge.shell.shipped import load_manifest

N = 50_000


def main() -> None:
    now = datetime.now(UTC)
    manifest = load_manifest("en-2023-01-10")
    candidate = Candidate(
        Purpose.NOTIFICATION,
        {
            FieldName.SERIAL_NUMBER: "SN0001",
            FieldName.ALARM_SNAPSHOT: b"\xff\xd8" + b"x" * 1000,
            FieldName.MAC_ADDRESS: "02:00:00:00:00:01",
            "gps_location": "52.2,21.0",
            FieldName.PLATE_NUMBER: "WX 4821K",
        },
        now,
        FieldName.ALARM_SNAPSHOT,
    )
    consent = ConsentState()
    rates = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(N):
            decide(candidate, manifest, consent, True, now)
        rates.append(N / (time.perf_counter() - start))
    print(f"decisions/s: median {statistics.median(rates):,.0f} (5 runs of {N:,})")


if __name__ == "__main__":
    main()
