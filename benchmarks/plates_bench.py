"""Benchmark: the plate anonymiser scored by ../shared/tools/plate_eval.py, several runs.

    .venv/bin/python benchmarks/plates_bench.py [--runs 3]

Prints each run's last line and the medians. The dev photos are AGPL-3.0: they are only
read here, never copied into the repository.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "tools" / "plate_eval.py"
DATA = ROOT.parent / "shared" / "data" / "plates-us"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not EVAL.exists() or not DATA.is_dir():
        print(f"error: the evaluator or the dev set is missing ({EVAL}, {DATA})", file=sys.stderr)
        return 2
    runs: list[dict[str, float]] = []
    for i in range(args.runs):
        out = subprocess.run(  # noqa: S603 - our own interpreter and the shared evaluator
            [
                sys.executable,
                str(EVAL),
                "--data",
                str(DATA),
                "--func",
                "edge.media.plates:blur_plates",
                "--threads",
                "1",
                "--res",
                "both",
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        last = out.stdout.strip().splitlines()[-1]
        print(f"run {i + 1}: {last}", flush=True)
        runs.append({k: float(v) for k, v in (kv.split("=") for kv in last.split())})
    print(
        "median: " + " ".join(f"{k}={statistics.median(r[k] for r in runs):.3f}" for k in runs[0])
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
