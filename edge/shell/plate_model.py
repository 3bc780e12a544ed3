"""Shell: the shipped plate verifier models, read from package data once per thread and
checked against their cards' SHA-256. A model that is missing or altered raises
``PlateModelError``, and ``edge.media.anonymise`` then blurs the whole frame (fails
closed). The models are rebuilt by ``scripts/train_plate_verifier.py``.
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

MODEL = "plate_verifier"  # every candidate
LARGE_MODEL = "plate_verifier_large"  # a second opinion on large candidates


class PlateModelError(EdgeError):
    """A shipped verifier model is missing or does not match its card (a build bug)."""


@dataclass(frozen=True, slots=True)
class Verifier:
    every: cv2.dnn.Net  # small and fast: scores every candidate but the large ones
    large: cv2.dnn.Net  # four times the capacity: judges the few large candidates instead
    crop: tuple[int, int]  # height, width: both see the same crops, built once per frame


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
    every, crop = _net(folder, MODEL)
    large, large_crop = _net(folder, LARGE_MODEL)
    if large_crop != crop:
        raise PlateModelError(f"{LARGE_MODEL} crops {large_crop}, {MODEL} {crop}: retrain one")
    return Verifier(every, large, crop)


def _net(folder: Traversable, name: str) -> tuple[cv2.dnn.Net, tuple[int, int]]:
    try:
        card = json.loads(folder.joinpath(f"{name}.json").read_text("utf-8"))
        data = folder.joinpath(f"{name}.onnx").read_bytes()
        expected, crop = card["sha256"], card["config"]["crop"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PlateModelError(f"the plate verifier model cannot be read: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise PlateModelError(f"{name}.onnx has SHA-256 {digest}, its card says {expected}")
    try:
        net = cv2.dnn.readNetFromONNX(np.frombuffer(data, np.uint8))
    except cv2.error as exc:
        raise PlateModelError(f"OpenCV cannot load {name}.onnx: {exc}") from exc
    return net, (int(crop[0]), int(crop[1]))
