"""Shell: real photos as camera frames (``--images DIR``, the demo's streets), with the
plate boxes written beside them, so the leak audit checks real plates too."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edge.media.frames import Frame
from edge.model import Box
from firmware_sim.errors import SimError
from firmware_sim.scene import RenderedFrame

STREETS = Path(__file__).resolve().parent / "streets"  # real frames, MIT (README there)
CAMERA_SIZE = (1280, 720)  # --images photos are letterboxed to this, as a sensor would give


def letterbox(
    image: Frame, size: tuple[int, int] = CAMERA_SIZE, boxes: Sequence[Box] = ()
) -> RenderedFrame:
    """``image`` scaled to fit ``size`` (w, h), centred on black, with ``boxes`` mapped the
    same way: every frame of a clip has one size, whatever the photos' sizes (the
    evaluator letterboxes the same way)."""
    width, height = size
    h, w = image.shape[:2]
    s = min(width / w, height / h)
    nw, nh = round(w * s), round(h * s)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    canvas = np.zeros((height, width, 3), np.uint8)
    ox, oy = (width - nw) // 2, (height - nh) // 2
    canvas[oy : oy + nh, ox : ox + nw] = cv2.resize(image, (nw, nh), interpolation=interp)
    mapped = []
    for b in boxes:
        x0, y0 = ox + int(b.x * s), oy + int(b.y * s)
        x1, y1 = ox + int(np.ceil((b.x + b.w) * s)), oy + int(np.ceil((b.y + b.h) * s))
        clipped = Box(x0, y0, max(1, x1 - x0), max(1, y1 - y0)).clip(width, height)
        if clipped is not None:
            mapped.append(clipped)
    return RenderedFrame(canvas, tuple(mapped), tuple("?" for _ in mapped))


def read_plate_boxes(path: Path) -> list[Box]:
    """The plate boxes of ``path``'s image, in the evaluator's format: one line per plate,
    ``file x y w h [text]`` (tab or space separated, pixels, top-left origin)."""
    boxes = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            x, y, w, h = (round(float(v)) for v in parts[1:5])
        except ValueError:
            raise SimError(f"{path}:{number}: expected 'file x y w h', got {line!r}") from None
        if len(parts) < 5 or w <= 0 or h <= 0 or x < 0 or y < 0:
            raise SimError(f"{path}:{number}: expected 'file x y w h', got {line!r}")
        boxes.append(Box(x, y, w, h))
    return boxes


def load_images(folder: Path) -> list[RenderedFrame]:
    """The photos of ``folder`` as camera frames, with the plate boxes of ``NAME.txt``
    beside ``NAME.jpg`` when there is one: the leak audit then checks those plates too."""
    if not folder.is_dir():
        raise SimError(f"--images: not a folder: {folder}")
    frames = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp"}:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                continue
            labels = path.with_suffix(".txt")
            boxes = read_plate_boxes(labels) if labels.is_file() else []
            frames.append(letterbox(np.asarray(image, dtype=np.uint8), boxes=boxes))
    if not frames:
        raise SimError(f"--images: no readable images in {folder}")
    return frames
