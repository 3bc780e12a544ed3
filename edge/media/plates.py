"""Pure: find licence plates and make them unreadable. CPU only, OpenCV + NumPy, no model.

Theory of operation. A plate, of any country, is a short row of high-contrast character
strokes on a flat background: many vertical edges close together, in a band a few times
wider than tall. The detector works on a grey copy scaled to ``WORK_WIDTH_PX``:

1. Character contrast, both polarities: the morphological black-hat (dark characters on a
   light plate: US, EU, Mercosur, Thai) plus the top-hat (light on dark), with a kernel
   wider than a character stroke.
2. Vertical strokes: the horizontal Sobel gradient of that map, thresholded adaptively
   (a multiple of the frame's own mean, so night/IR frames work too).
3. A horizontal closing joins the strokes of one plate into one blob; an opening removes
   isolated edges (wires, leaves).
4. Blobs are kept when their shape is plate-like: aspect between ``MIN_ASPECT`` and
   ``MAX_ASPECT`` (2:1 US up to ~5:1 EU; two-line plates are nearer 2:1), a minimum
   height, and enough stroke density inside.
5. Boxes are padded (``PAD_X``, ``PAD_Y``) and mapped back to the frame: blurring a little
   more than the plate costs collateral; missing one character is a leak.

The same pipeline runs at two scales (a coarse pass for near plates, a finer one for
small, far plates) and the boxes are merged.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.media.blur import blur_regions
from edge.media.frames import Frame, validate_frame
from edge.model import Box

WORK_WIDTH_PX = 960
MIN_ASPECT = 1.1
MAX_ASPECT = 8.0
MIN_HEIGHT_PX = 6  # at work scale
PAD_X = 0.18
PAD_Y = 0.35
MIN_FILL = 0.30


def _candidates(gray: NDArray[np.uint8], char_px: int) -> list[tuple[int, int, int, int]]:
    """Plate-like blobs (x, y, w, h) in ``gray`` for characters about ``char_px`` tall."""
    k = max(3, char_px | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    contrast = cv2.add(
        cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, kernel),
        cv2.morphologyEx(gray, cv2.MORPH_TOPHAT, kernel),
    )
    grad = cv2.convertScaleAbs(cv2.Sobel(contrast, cv2.CV_16S, 1, 0, ksize=3))
    level = max(40.0, float(grad.mean()) * 4.0)
    _, edges = cv2.threshold(grad, level, 255, cv2.THRESH_BINARY)
    close_w = max(3, char_px)
    joined = cv2.morphologyEx(
        edges,
        cv2.MORPH_CLOSE,
        cv2.getStructuringElement(cv2.MORPH_RECT, (close_w, max(1, char_px // 4))),
    )
    joined = cv2.morphologyEx(
        joined,
        cv2.MORPH_OPEN,
        cv2.getStructuringElement(cv2.MORPH_RECT, (max(3, char_px // 2), max(2, char_px // 3))),
    )
    count, _, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    found = []
    for i in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[i])
        if h < MIN_HEIGHT_PX or h > char_px * 4 or w < char_px:
            continue
        aspect = w / h
        if not MIN_ASPECT <= aspect <= MAX_ASPECT:
            continue
        if area / (w * h) < MIN_FILL:
            continue
        found.append((x, y, w, h))
    return found


def _merge(boxes: list[Box]) -> list[Box]:
    """Merge overlapping boxes so one plate gets one blur."""
    merged: list[Box] = []
    for box in sorted(boxes, key=lambda b: (b.x, b.y)):
        for i, other in enumerate(merged):
            if (
                box.x < other.x + other.w
                and other.x < box.x + box.w
                and box.y < other.y + other.h
                and other.y < box.y + box.h
            ):
                x0, y0 = min(box.x, other.x), min(box.y, other.y)
                x1 = max(box.x + box.w, other.x + other.w)
                y1 = max(box.y + box.h, other.y + other.h)
                merged[i] = Box(x0, y0, x1 - x0, y1 - y0)
                break
        else:
            merged.append(box)
    return merged


def detect_plates(frame: Frame) -> list[Box]:
    """Boxes (frame pixels, padded) of everything that looks like a licence plate.

    Raises:
        InputError: ``frame`` is not a BGR uint8 HxWx3 image.
    """
    checked = validate_frame(frame)
    height, width = checked.shape[:2]
    scale = min(1.0, WORK_WIDTH_PX / width)
    gray: NDArray[np.uint8] = np.asarray(cv2.cvtColor(checked, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    if scale < 1.0:
        size = (round(width * scale), round(height * scale))
        gray = np.asarray(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    boxes: list[Box] = []
    work_h = gray.shape[0]
    for char_px in (max(8, work_h // 60), max(14, work_h // 30)):
        for x, y, w, h in _candidates(gray, char_px):
            pad_x, pad_y = w * PAD_X, h * PAD_Y
            x0 = max(0, int((x - pad_x) / scale))
            y0 = max(0, int((y - pad_y) / scale))
            x1 = min(width, int((x + w + pad_x) / scale) + 1)
            y1 = min(height, int((y + h + pad_y) / scale) + 1)
            boxes.append(Box(x0, y0, x1 - x0, y1 - y0))
    return _merge(boxes)


def blur_plates(frame: Frame) -> Frame:
    """A new frame with every detected plate pixelated and blurred (input untouched).

    This is the entry point ``../shared/tools/plate_eval.py`` scores.
    """
    return blur_regions(frame, detect_plates(frame))
