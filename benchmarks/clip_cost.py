"""Benchmark: what anonymising a 1080p event clip costs, per second of clip, one core.

    .venv/bin/python benchmarks/clip_cost.py [--fps 10] [--seconds 3] [--runs 3]

Every frame of a clip is anonymised (``edge.media.anonymise.anonymise_clip``: detection
on each frame, boxes carried two frames either way), then encoded (``make_clip``). The
frames are the demo's real street photos (firmware_sim/streets, MIT), scaled to 1920x1080
and cycled, with a small pan so no two frames are equal. Prints the median over runs of
detection+blur and of encoding, in seconds of CPU per second of clip.
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np

from edge.media.anonymise import anonymise_clip
from edge.shell.clip import make_clip
from firmware_sim.photos import STREETS, load_images


def _frames(count: int) -> list[np.ndarray]:
    photos = [cv2.resize(p.frame, (1920 + 64, 1080 + 36)) for p in load_images(STREETS)]
    out = []
    for i in range(count):
        photo = photos[(i // 8) % len(photos)]
        dx, dy = (i % 8) * 8, (i % 8) * 4
        out.append(np.ascontiguousarray(photo[dy : dy + 1080, dx : dx + 1920]))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    frames = _frames(round(args.fps * args.seconds))
    anonymised, encoded = [], []
    for _ in range(args.runs):
        start = time.perf_counter()
        out = [a.frame for a in anonymise_clip(frames, 10.0, time.monotonic)]
        middle = time.perf_counter()
        make_clip(out, args.fps)
        end = time.perf_counter()
        anonymised.append((middle - start) / args.seconds)
        encoded.append((end - middle) / args.seconds)
    print(
        f"1080p clip, {len(frames)} frames at {args.fps} fps: anonymise "
        f"{statistics.median(anonymised):.2f} s per clip second, encode "
        f"{statistics.median(encoded):.2f} s per clip second (median of {args.runs})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
