"""Pure: find licence plates and make them unreadable: the anonymiser's entry points.

Two stages. The classical passes (``edge.media.plate_candidates``) find every box that
may hold a plate, tuned for recall; the committed verifier models (``models/*.onnx``,
read and checked by ``edge.shell.plate_model``) drop the boxes that hold none
(``edge.media.plate_verifier``): a small one judges most candidates, a larger one the
few large candidates instead, where a false plate costs the picture most. A model that is
missing or altered raises ``PlateModelError``, and ``edge.media.anonymise`` then blurs
the whole frame (fails closed). Figures are in docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.media.blur import blur_regions
from edge.media.frames import Frame, validate_frame
from edge.media.plate_candidates import candidate_boxes, merge_boxes
from edge.media.plate_verifier import (
    Scorer,
    candidate_scores,
    crop_batch,
    kept_boxes,
    score_crops,
    threshold_for,
)
from edge.model import Box
from edge.shell.plate_model import PlateModelError, Verifier, load_verifier

__all__ = ["THRESHOLD", "PlateModelError", "Verifier", "blur_plates", "detect_plates"]

THRESHOLD = 0.15  # the verifier's score under which a candidate is not a plate (see docs)


def detect_plates(frame: Frame, verifier: Verifier | None = None) -> list[Box]:
    """Boxes (frame pixels, padded, merged) of every licence plate in ``frame``.

    ``verifier``: this thread's shipped model when None.

    Raises:
        InputError: ``frame`` is not a BGR uint8 HxWx3 image.
        PlateModelError: the shipped model is missing or altered.
    """
    checked = validate_frame(frame)
    verifier = verifier or load_verifier()
    found = candidate_boxes(checked)
    candidates = sorted(found, key=lambda b: (b.y, b.x, b.w, b.h))
    gray = np.asarray(cv2.cvtColor(checked, cv2.COLOR_BGR2GRAY), np.uint8)
    cores = [found[b] for b in candidates]
    area = checked.shape[0] * checked.shape[1]
    distinct = list(dict.fromkeys(cores))  # a core found by several passes is judged once
    rows = {core: i for i, core in enumerate(distinct)}
    blob = crop_batch(gray, distinct, verifier.crop)

    def judge(net: cv2.dnn.Net) -> Scorer:
        def score(boxes: Sequence[Box]) -> NDArray[np.float32]:
            wanted = list(dict.fromkeys(boxes))
            judged = score_crops(net, blob[[rows[b] for b in wanted]])
            by_core = dict(zip(wanted, judged.tolist(), strict=True))
            return np.asarray([by_core[b] for b in boxes], np.float32)

        return score

    scores = candidate_scores(candidates, cores, area, judge(verifier.every), judge(verifier.large))
    thresholds = [threshold_for(b, area, THRESHOLD) for b in candidates]
    return merge_boxes(kept_boxes(candidates, cores, scores.tolist(), thresholds))


def blur_plates(frame: Frame) -> Frame:
    """A new frame with every detected plate pixelated and blurred (input untouched).

    This is the entry point ``../shared/tools/plate_eval.py`` scores.
    """
    return blur_regions(frame, detect_plates(frame))
