"""Before/after pictures of the plate anonymiser on real frames, for docs/benchmarks.md.

    .venv/bin/python benchmarks/plates_pictures.py [--old /tmp/old_plates.py]
        [--out docs/img/plates-before-after.jpg]

Uses only the MIT-licensed street frames of firmware_sim/streets (held-out drives of
plates-ro, never the AGPL dev photos). Each row: the frame with its plate boxes (green),
then what leaves the device today, then (with ``--old``) what an older anonymiser made of
it: the blurred area outside the plates is the collateral a viewer sees.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np

from edge.media.plates import blur_plates
from firmware_sim.photos import STREETS, load_images

ROOT = Path(__file__).resolve().parents[1]
TILE_W = 480


def _tile(frame: np.ndarray, label: str) -> np.ndarray:
    h, w = frame.shape[:2]
    tile = cv2.resize(frame, (TILE_W, round(h * TILE_W / w)), interpolation=cv2.INTER_AREA)
    cv2.putText(tile, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(
        tile, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA
    )
    return np.asarray(tile)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", type=Path, help="an older plates.py to show beside it")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "img" / "plates-before-after.jpg"
    )
    args = parser.parse_args()
    old = None
    if args.old:
        spec = importlib.util.spec_from_file_location("old_plates", args.old)
        if spec is None or spec.loader is None:
            print(f"error: cannot load {args.old}", file=sys.stderr)
            return 2
        old = importlib.util.module_from_spec(spec)
        sys.modules["old_plates"] = old
        spec.loader.exec_module(old)
    rows = []
    for street in load_images(STREETS):
        marked = street.frame.copy()
        for b in street.plate_boxes:
            cv2.rectangle(marked, (b.x, b.y), (b.x + b.w, b.y + b.h), (0, 255, 0), 2)
        tiles = [_tile(marked, "camera"), _tile(blur_plates(street.frame), "sent (now)")]
        if old is not None:
            tiles.append(_tile(old.blur_plates(street.frame), "sent (before)"))
        rows.append(np.hstack(tiles))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 80])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
