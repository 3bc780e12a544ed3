"""Benchmark: plate detection recall by box overlap on the held-out drives of plates-ro.

    .venv/bin/python benchmarks/plates_holdout.py [--data ../shared/data/plates-ro]
        [--videos day2 day3] [--thresholds 0.3 0.5 0.7]

The verifier is trained without these drives (``hold_out`` in
scripts/train_plate_verifier.py), so this is the honest figure on real EU plates. The
evaluator's own ``recall`` does not hold on this set's small plates (its README), so a
plate counts as found when the boxes to blur cover at least ``--cover`` of it. Also
prints the share of each frame blurred outside the plates (the collateral, as boxes) and
lists the plates missed. With several ``--thresholds``, each is tried on the same frames.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import cv2
import numpy as np

from edge.media import plates
from firmware_sim.photos import read_plate_boxes

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/plates-ro")
    parser.add_argument("--videos", nargs="+", default=["day2", "day3"])
    parser.add_argument("--thresholds", nargs="+", type=float, default=[plates.THRESHOLD])
    parser.add_argument("--cover", type=float, default=0.9)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    frames = []
    for p in sorted(args.data.glob("*/*.jpg")):
        if p.name.startswith(tuple(args.videos)):
            image = cv2.imread(str(p))
            if image is None:
                raise SystemExit(f"error: cannot read {p}")
            frames.append((p, np.asarray(image, np.uint8), read_plate_boxes(p.with_suffix(".txt"))))
    if not frames:
        raise SystemExit(f"error: no frames of {args.videos} under {args.data}")
    for threshold in args.thresholds:
        plates.THRESHOLD = threshold
        found = total = 0
        collateral = []
        missed = []
        for path, frame, truth in frames:
            boxes = plates.detect_plates(frame)
            mask = np.zeros(frame.shape[:2], np.uint8)
            for b in boxes:
                mask[max(0, b.y) : b.y + b.h, max(0, b.x) : b.x + b.w] = 1
            outside = mask.copy()
            for t in truth:
                total += 1
                share = float(mask[t.y : t.y + t.h, t.x : t.x + t.w].mean())
                if share >= args.cover:
                    found += 1
                else:
                    missed.append(f"{path.name} {t} covered {share:.2f}")
                outside[t.y : t.y + t.h, t.x : t.x + t.w] = 0
            collateral.append(float(outside.mean()))
        print(
            f"threshold {threshold:.2f}: {len(frames)} frames, {total} plates, "
            f"recall {found / total:.3f} ({total - found} missed), "
            f"collateral mean {statistics.fmean(collateral):.3f}"
        )
        for line in missed:
            print(f"  missed {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
