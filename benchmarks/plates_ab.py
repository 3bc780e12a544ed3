"""Benchmark: two versions of the plate anonymiser side by side, interleaved, one core.

    git show HEAD~1:edge/media/plates.py > /tmp/old_plates.py
    .venv/bin/python benchmarks/plates_ab.py /tmp/old_plates.py [--rounds 3]

Times ``blur_plates`` of the given file and of ``edge.media.plates`` on every dev photo
letterboxed to 1080p, alternating which runs first, and prints both medians and the
median per-frame ratio (new / old). A ratio measured in one run is what survives this
machine's day-to-day noise; absolute milliseconds do not. It also says whether the two
return the same boxes, so a pure speed-up can be checked for identical output.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np

from edge.media import plates

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "plates-us"


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("old_plates", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"error: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_plates"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _letterboxed(path: Path) -> np.ndarray:
    """As the evaluator does: scaled to fit 1920x1080, black padding."""
    img = cv2.imread(str(path))
    if img is None:
        raise SystemExit(f"error: cannot read {path}")
    h, w = img.shape[:2]
    s = min(1920 / w, 1080 / h)
    nw, nh = round(w * s), round(h * s)
    canvas = np.zeros((1080, 1920, 3), np.uint8)
    ox, oy = (1920 - nw) // 2, (1080 - nh) // 2
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    canvas[oy : oy + nh, ox : ox + nw] = cv2.resize(img, (nw, nh), interpolation=interp)
    return canvas


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("old", type=Path, help="a plates.py to compare with the current one")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not args.old.is_file():
        print(f"error: no such file: {args.old}", file=sys.stderr)
        return 2
    if not DATA.is_dir():
        print(f"error: the dev set is missing ({DATA})", file=sys.stderr)
        return 2
    cv2.setNumThreads(1)
    old = _load(args.old)
    frames = [_letterboxed(p) for p in sorted(DATA.glob("*.jpg"))]
    same = sum(old.detect_plates(f) == plates.detect_plates(f) for f in frames)
    runs: dict[str, list[float]] = {"old": [], "new": []}
    fns: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "old": old.blur_plates,
        "new": plates.blur_plates,
    }
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
        order = ("old", "new") if r % 2 == 0 else ("new", "old")
        for frame in frames:
            for name in order:
                start = time.perf_counter()
                fns[name](frame)
                runs[name].append((time.perf_counter() - start) * 1000)
    ratio = statistics.median(n / o for n, o in zip(runs["new"], runs["old"], strict=True))
    print(
        f"frames {len(frames)}, same boxes {same}/{len(frames)}; "
        f"old p50 {statistics.median(runs['old']):.1f} ms, "
        f"new p50 {statistics.median(runs['new']):.1f} ms, new/old {ratio:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
