"""Pure: judge the classical candidates with a learned verifier, and keep plates whole.

The classical passes (``edge.media.plate_candidates``) find every plate and much else:
bodywork, grilles, signs, foliage. A small CNN (``scripts/train_plate_verifier.py``)
scores each candidate from a grey crop of its core (the characters it was found from,
which look alike at every size); boxes under their threshold go, which is what keeps a
snapshot worth looking at. Two rules keep the verifier from opening a leak:

- A dropped box that holds most of a kept box, and is not much larger, stays: the
  larger box is usually the whole plate and the kept one a few of its characters, so
  dropping it would turn a covered plate into a partly covered one.
- Cores too small for their crop to show characters (``MIN_JUDGED_HEIGHT_PX``) are kept
  unjudged; small boxes need less evidence (``threshold_for``): they cost the picture
  little, and a far plate's few pixels are the verifier's least certain case.

The networks run through ``cv2.dnn`` (no extra dependency); they are passed in, so this
module stays free of file I/O. A small one judges most candidates; a larger one judges
the large candidates instead (``candidate_scores``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.model import Box

LARGE_JUDGED_SHARE = 0.005  # a box over this share of the frame (~100x100 px in 1080p) ...
# ... is judged by the large model instead (see candidate_scores)
MIN_JUDGED_HEIGHT_PX = 12  # frame pixels: a core lower than this is kept without a verdict
SMALL_SHARE = 0.003  # a box under this share of the frame (~80x80 px in 1080p) ...
SMALL_THRESHOLD = 0.1  # ... is kept from this score on (see threshold_for)
LARGE_SHARE = 0.05  # a box over this share of the frame ...
LARGE_THRESHOLD = 0.95  # ... needs at least this score (see threshold_for)
CONTAINS_SHARE = 0.5  # a dropped box holding this share of a kept box ...
CONTAINS_MAX_AREA = 6.0  # ... and at most this many times its area stays (a whole plate)


def crop_batch(
    gray: NDArray[np.uint8], boxes: Sequence[Box], size: Sequence[int]
) -> NDArray[np.float32]:
    """The boxes of ``gray`` fitted into ``size`` (height, width) with their shape kept
    (the rest filled with the box's mean grey), as an N x 1 x H x W blob in [0, 1]: the
    verifier's input, built the same way for training. Keeping the shape tells the
    network what stretching would hide: a plate is a wide box, a tree's box is not."""
    height, width = int(size[0]), int(size[1])
    frame_h, frame_w = gray.shape[:2]
    blob = np.zeros((len(boxes), 1, height, width), np.float32)
    for i, box in enumerate(boxes):
        clipped = box.clip(frame_w, frame_h)
        if clipped is None:
            continue
        roi = gray[clipped.y : clipped.y + clipped.h, clipped.x : clipped.x + clipped.w]
        scale = min(width / clipped.w, height / clipped.h)
        w = min(width, max(1, round(clipped.w * scale)))
        h = min(height, max(1, round(clipped.h * scale)))
        resized = cv2.resize(
            roi, (w, h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        )
        top, left = (height - h) // 2, (width - w) // 2
        blob[i, 0] = float(cv2.mean(roi)[0])
        blob[i, 0, top : top + h, left : left + w] = resized
    blob *= 1.0 / 255.0
    return blob


def score_crops(net: cv2.dnn.Net, blob: NDArray[np.float32]) -> NDArray[np.float32]:
    """The verifier's probability that each crop (a row of ``crop_batch``) holds a plate."""
    if len(blob) == 0:
        return np.zeros(0, np.float32)
    net.setInput(blob)
    logits = np.asarray(net.forward(), np.float32).reshape(-1)
    return np.asarray(1.0 / (1.0 + np.exp(-logits)), np.float32)


Scorer = Callable[[Sequence[Box]], NDArray[np.float32]]  # cores -> probability of a plate


def candidate_scores(
    boxes: Sequence[Box], cores: Sequence[Box], frame_area: int, every: Scorer, large: Scorer
) -> NDArray[np.float32]:
    """Each candidate's score: the small model's (``every``), or for a box over
    ``LARGE_JUDGED_SHARE`` of the frame the large model's (``large``); each model sees
    only its own boxes. Large boxes are few (~20 of ~90 a frame) but hold most of what a
    false plate costs the picture: fences, facades and lettering that a 15k-parameter
    model takes for rows of characters."""
    big = [i for i, b in enumerate(boxes) if b.area > LARGE_JUDGED_SHARE * frame_area]
    rest = sorted(set(range(len(boxes))) - set(big))
    scores = np.zeros(len(boxes), np.float32)
    for indexes, scorer in ((rest, every), (big, large)):
        if indexes:
            scores[indexes] = scorer([cores[i] for i in indexes])
    return scores


def _holding(outers: Sequence[Box], inners: Sequence[Box]) -> list[bool]:
    """For each outer box, whether it holds ``CONTAINS_SHARE`` of some inner box and is at
    most ``CONTAINS_MAX_AREA`` times its area (all pairs at once: a frame has ~100)."""
    if not outers or not inners:
        return [False] * len(outers)
    o = np.asarray([(b.x, b.y, b.x + b.w, b.y + b.h) for b in outers], np.int64)[:, None, :]
    i = np.asarray([(b.x, b.y, b.x + b.w, b.y + b.h) for b in inners], np.int64)[None, :, :]
    ix = np.minimum(o[..., 2], i[..., 2]) - np.maximum(o[..., 0], i[..., 0])
    iy = np.minimum(o[..., 3], i[..., 3]) - np.maximum(o[..., 1], i[..., 1])
    inner_area = (i[..., 2] - i[..., 0]) * (i[..., 3] - i[..., 1])
    outer_area = (o[..., 2] - o[..., 0]) * (o[..., 3] - o[..., 1])
    holds = (
        (ix > 0)
        & (iy > 0)
        & (ix * iy >= CONTAINS_SHARE * inner_area)
        & (outer_area <= CONTAINS_MAX_AREA * inner_area)
    )
    return [bool(v) for v in holds.any(axis=1)]


def threshold_for(box: Box, frame_area: int, threshold: float) -> float:
    """The score a box needs to be kept: ``SMALL_THRESHOLD`` under ``SMALL_SHARE`` of the
    frame, at least ``LARGE_THRESHOLD`` over ``LARGE_SHARE``, else ``threshold``. A plate
    missed costs the same at any size; a box blurred for nothing costs the picture its
    area, so a small box needs less evidence and a large one more."""
    if box.area < SMALL_SHARE * frame_area:
        return SMALL_THRESHOLD
    if box.area > LARGE_SHARE * frame_area:
        return max(threshold, LARGE_THRESHOLD)
    return threshold


def kept_boxes(
    boxes: Sequence[Box], cores: Sequence[Box], scores: Sequence[float], thresholds: Sequence[float]
) -> list[Box]:
    """The boxes a plate may be in: judged plates, boxes whose core is too small to judge,
    and dropped boxes that hold a judged plate (see the module's docstring)."""
    judged = [b for b, s, t in zip(boxes, scores, thresholds, strict=True) if s >= t]
    unjudged = [
        b
        for b, core, s, t in zip(boxes, cores, scores, thresholds, strict=True)
        if s < t and core.h < MIN_JUDGED_HEIGHT_PX
    ]
    # One step only, and only from what the verifier judged: a restored box does not
    # restore the boxes around it in turn (a chain of "holds most of" would grow from a
    # plate to the whole car), nor does a box too small to judge.
    found = set(judged) | set(unjudged)
    dropped = [b for b in boxes if b not in found]
    restored = [b for b, held in zip(dropped, _holding(dropped, judged), strict=True) if held]
    return judged + unjudged + restored
