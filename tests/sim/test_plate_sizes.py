"""No plate keeps readable detail at any size: ~10 px high up to half the frame height.

Large close-up plates were missed (glyphs taller than the row pass accepts at its working
width); this sweep samples sizes x styles x tilts x frame sizes and checks each plate with
the evaluator's 'protected' measure."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from edge.media.plates import blur_plates
from firmware_sim.scene import PlateStyle, render_plate_closeup

# Re-implemented from ../shared/tools/plate_eval.py (plate_score), so this test does not
# need ../shared: a plate is protected iff its band-passed detail at a 32 px canonical
# height is <= 20 % of the original (whole box), <= 40 % in each 2x4 cell that had detail,
# and >= 90 % of its pixels changed.
CANON_H = 32
BANDPASS_SIGMA = 8.0
GRID = (2, 4)
R_MAX, CELL_MAX, CELL_MIN_SHARE, COVER_MIN = 0.20, 0.40, 0.30, 0.90


def _detail(gray: NDArray[np.float32], w: int, h: int) -> NDArray[np.float32]:
    cw = int(np.clip(round(w * CANON_H / h), 16, 256))
    interp = cv2.INTER_AREA if h > CANON_H else cv2.INTER_LINEAR
    g = cv2.resize(gray, (cw, CANON_H), interpolation=interp)
    hp = g - cv2.GaussianBlur(g, (0, 0), BANDPASS_SIGMA)
    gx = cv2.Sobel(hp, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(hp, cv2.CV_32F, 0, 1, ksize=3)
    return np.asarray(cv2.magnitude(gx, gy)[1:-1, 1:-1], np.float32)


def protected(orig: NDArray[np.uint8], out: NDArray[np.uint8], box: tuple[int, ...]) -> bool:
    x, y, w, h = box
    o, r = orig[y : y + h, x : x + w], out[y : y + h, x : x + w]
    cover = float((cv2.absdiff(o, r).max(axis=2) > 1).mean())
    mo = _detail(cv2.cvtColor(o, cv2.COLOR_BGR2GRAY).astype(np.float32), w, h)
    mr = _detail(cv2.cvtColor(r, cv2.COLOR_BGR2GRAY).astype(np.float32), w, h)
    do = float(mo.mean()) + 1e-6
    cells = []
    rows = np.linspace(0, mo.shape[0], GRID[0] + 1).astype(int)
    cols = np.linspace(0, mo.shape[1], GRID[1] + 1).astype(int)
    for a, b in itertools.pairwise(rows):
        for c, d in itertools.pairwise(cols):
            so = float(mo[a:b, c:d].mean())
            if so >= CELL_MIN_SHARE * do:
                cells.append(float(mr[a:b, c:d].mean()) / (so + 1e-6))
    res = float(mr.mean()) / do
    return res <= R_MAX and (max(cells) if cells else res) <= CELL_MAX and cover >= COVER_MIN


STYLES = list(PlateStyle)
SIZES = [(640, 360), (1280, 720), (1920, 1080)]


# Plates still readable on this grid (a ratchet: the goal is none). Before the coarse row
# pass and shape-aware boxes: 21, 19 and 19 of 40 per frame size; before rows were
# continued along their fitted line (tilted plates): 3, 2 and 0.
KNOWN_MISSES = {
    640: [(23, "dark", 15.0, False)],
    1280: [(216, "thai", 7.0, False)],
    1920: [],
}


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_no_plate_keeps_detail_from_10_px_to_half_the_frame(width: int, height: int) -> None:
    rng = np.random.default_rng([15, width])
    heights = np.geomspace(10, height // 2, 8).round().astype(int)
    readable = []
    for i, plate_h in enumerate(heights):
        for j, style in enumerate(STYLES):
            k = i * len(STYLES) + j
            tilt = float((-15, -7, 0, 7, 15)[k % 5])
            night = k % 4 == 3
            scene = render_plate_closeup(rng, width, height, style, int(plate_h), tilt, night)
            box = scene.plate_boxes[0]
            out = blur_plates(scene.frame)
            if not protected(scene.frame, out, (box.x, box.y, box.w, box.h)):
                readable.append((int(plate_h), style.value, tilt, night))
    assert readable == KNOWN_MISSES[width]
