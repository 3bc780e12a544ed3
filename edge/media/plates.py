"""Shell: find licence plates and make them unreadable: the anonymiser's entry points.

Two stages. The classical passes (``edge.media.plate_candidates``, pure) find every box
that may hold a plate, tuned for recall; the committed verifier model
(``models/plate_verifier.onnx``, rebuilt by ``scripts/train_plate_verifier.py``) drops
the boxes that hold none (``edge.media.plate_verifier``, pure). This module only reads the
model from package data, once per thread, and checks it against its card's SHA-256: a
model that is missing or altered raises, and ``edge.media.anonymise`` then blurs the whole
frame (fails closed). Figures are in docs/benchmarks.md.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import cv2
import numpy as np

from edge.errors import EdgeError
from edge.media.blur import blur_regions
from edge.media.frames import Frame, validate_frame
from edge.media.plate_candidates import candidate_boxes, merge_boxes
from edge.media.plate_verifier import kept_boxes, plate_scores, threshold_for
from edge.model import Box

MODEL = "plate_verifier.onnx"
CARD = "plate_verifier.json"
THRESHOLD = 0.3  # the verifier's score under which a candidate is not a plate (see docs)


class PlateModelError(EdgeError):
    """The shipped verifier model is missing or does not match its card (a build bug)."""


@dataclass(frozen=True, slots=True)
class Verifier:
    net: cv2.dnn.Net
    crop: tuple[int, int]  # height, width


_local = threading.local()  # cv2.dnn.Net is not safe to share between threads


def load_verifier(folder: Traversable | None = None) -> Verifier:
    """This thread's verifier, read from package data and checked on first use; or the
    one in ``folder`` (read each time: for tests and tools).

    Raises:
        PlateModelError: the model or its card is missing, unreadable or altered.
    """
    if folder is None:
        verifier: Verifier | None = getattr(_local, "verifier", None)
        if verifier is None:
            verifier = _read(resources.files("edge.media").joinpath("models"))
            _local.verifier = verifier
        return verifier
    return _read(folder)


def _read(folder: Traversable) -> Verifier:
    try:
        card = json.loads(folder.joinpath(CARD).read_text("utf-8"))
        data = folder.joinpath(MODEL).read_bytes()
        expected, crop = card["sha256"], card["config"]["crop"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PlateModelError(f"the plate verifier model cannot be read: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise PlateModelError(f"{MODEL} has SHA-256 {digest}, its card says {expected}")
    try:
        net = cv2.dnn.readNetFromONNX(np.frombuffer(data, np.uint8))
    except cv2.error as exc:
        raise PlateModelError(f"OpenCV cannot load {MODEL}: {exc}") from exc
    return Verifier(net, (int(crop[0]), int(crop[1])))


def detect_plates(frame: Frame) -> list[Box]:
    """Boxes (frame pixels, padded, merged) of every licence plate in ``frame``.

    Raises:
        InputError: ``frame`` is not a BGR uint8 HxWx3 image.
        PlateModelError: the shipped model is missing or altered.
    """
    checked = validate_frame(frame)
    verifier = load_verifier()
    found = candidate_boxes(checked)
    candidates = sorted(found, key=lambda b: (b.y, b.x, b.w, b.h))
    gray = np.asarray(cv2.cvtColor(checked, cv2.COLOR_BGR2GRAY), np.uint8)
    cores = [found[b] for b in candidates]
    scores = plate_scores(verifier.net, gray, cores, verifier.crop)
    area = checked.shape[0] * checked.shape[1]
    thresholds = [threshold_for(b, area, THRESHOLD) for b in candidates]
    return merge_boxes(kept_boxes(candidates, cores, scores.tolist(), thresholds))


def blur_plates(frame: Frame) -> Frame:
    """A new frame with every detected plate pixelated and blurred (input untouched).

    This is the entry point ``../shared/tools/plate_eval.py`` scores.
    """
    return blur_regions(frame, detect_plates(frame))
