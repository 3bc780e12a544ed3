"""Pure: find licence plates and make them unreadable. CPU only, OpenCV + NumPy, no model.

Theory of operation. A plate, of any country, is a short band of high-contrast character
strokes: many vertical edges close together, in a region a few times wider than tall.
The detector looks for exactly that, at several plate sizes, on a grey copy of the frame
scaled to ``WORK_WIDTH_PX``:

1. Vertical strokes: the horizontal Sobel gradient, kept where it is above the frame's
   own ``EDGE_PERCENTILE`` (and ``EDGE_MIN``), so dim night/IR frames work as day ones.
2. Stroke density: for each plate height ``h`` in ``PLATE_HEIGHTS_PX``, a box filter of
   about ``2h x h/2`` measures the share of stroke pixels around each point; a plate's
   characters make it dense (``DENSITY_MIN``).
3. A closing joins the dense area of one plate; components are kept when plate-like for
   that ``h``: height within ``[0.4h, 2.2h]``, aspect 1.2 to 8 (US 2:1, Thai two-line,
   Mercosur 3:1, EU 4.6:1) and mostly filled.
4. Boxes are padded (``PAD_X``, ``PAD_Y``) and mapped back to frame pixels; boxes of
   different sizes may overlap, and each is blurred (merging them would blur the gaps).

The detector errs on the side of blurring: a textured patch blurred for nothing costs
picture quality; a plate missed is a leak. Measured figures are in docs/benchmarks.md.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.media.blur import blur_regions
from edge.media.frames import Frame, validate_frame
from edge.model import Box

WORK_WIDTH_PX = 640
EDGE_PERCENTILE = 90.0
EDGE_MIN = 40.0
DENSITY_MIN = 0.22
PLATE_HEIGHTS_PX = (7, 10, 16, 26, 42, 68)  # at work scale: ~20 to ~200 px in a 1080p frame
MIN_ASPECT = 1.2
MAX_ASPECT = 8.0
MIN_FILL = 0.4
PAD_X = 0.15
PAD_Y = 0.30


def _work_gray(frame: Frame) -> tuple[NDArray[np.uint8], float]:
    height, width = frame.shape[:2]
    scale = min(1.0, WORK_WIDTH_PX / width)
    gray = np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        gray = np.asarray(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    return gray, scale


def _plate_like(stats: NDArray[np.int32], plate_h: int) -> list[tuple[int, int, int, int]]:
    found = []
    for x, y, w, h, area in stats[1:]:
        if not plate_h * 0.4 <= h <= plate_h * 2.2:
            continue
        if not MIN_ASPECT <= w / h <= MAX_ASPECT:
            continue
        if area / (w * h) < MIN_FILL:
            continue
        found.append((int(x), int(y), int(w), int(h)))
    return found


def detect_plates(frame: Frame) -> list[Box]:
    """Boxes (frame pixels, padded) of everything that looks like a licence plate.

    Raises:
        InputError: ``frame`` is not a BGR uint8 HxWx3 image.
    """
    checked = validate_frame(frame)
    height, width = checked.shape[:2]
    gray, scale = _work_gray(checked)
    strokes = np.abs(cv2.Sobel(gray, cv2.CV_16S, 1, 0, ksize=3))
    level = max(EDGE_MIN, float(np.percentile(strokes, EDGE_PERCENTILE)))
    edges = (strokes > level).astype(np.float32)
    boxes: list[Box] = []
    for plate_h in PLATE_HEIGHTS_PX:
        density = cv2.boxFilter(edges, -1, (max(3, plate_h * 2), max(3, plate_h // 2)))
        kernel = cv2.getStructuringElement(
            cv2.MORPH_RECT, (max(3, plate_h // 2), max(3, plate_h // 4))
        )
        dense = cv2.morphologyEx((density > DENSITY_MIN).astype(np.uint8), cv2.MORPH_CLOSE, kernel)
        _, _, stats, _ = cv2.connectedComponentsWithStats(dense, connectivity=8)
        for x, y, w, h in _plate_like(np.asarray(stats, dtype=np.int32), plate_h):
            pad_x, pad_y = w * PAD_X, h * PAD_Y
            x0 = max(0, int((x - pad_x) / scale))
            y0 = max(0, int((y - pad_y) / scale))
            x1 = min(width, int((x + w + pad_x) / scale) + 1)
            y1 = min(height, int((y + h + pad_y) / scale) + 1)
            boxes.append(Box(x0, y0, x1 - x0, y1 - y0))
    return sorted(set(boxes), key=lambda b: (b.y, b.x))


def blur_plates(frame: Frame) -> Frame:
    """A new frame with every detected plate pixelated and blurred (input untouched).

    This is the entry point ``../shared/tools/plate_eval.py`` scores.
    """
    return blur_regions(frame, detect_plates(frame))
