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
EVAL = ROOT.parent / "shared" / "tools" / "plate_eval.py"


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"error: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _letterboxed_dev_frames() -> list[np.ndarray]:
    """The dev photos letterboxed to 1080p by the evaluator's own code."""
    evaluator = _load(EVAL, "plate_eval")
    frames = []
    for _, path, boxes in evaluator.load_dataset(str(DATA)):
        img = cv2.imread(path)
        if img is None:
            raise SystemExit(f"error: cannot read {path}")
        frames.append(evaluator.letterbox(img, boxes)[0])
    return frames


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("old", type=Path, help="a plates.py to compare with the current one")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not args.old.is_file():
        print(f"error: no such file: {args.old}", file=sys.stderr)
        return 2
    if not DATA.is_dir() or not EVAL.is_file():
        print(f"error: the dev set or the evaluator is missing ({DATA}, {EVAL})", file=sys.stderr)
        return 2
    cv2.setNumThreads(1)
    old = _load(args.old, "old_plates")
    frames = _letterboxed_dev_frames()
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
