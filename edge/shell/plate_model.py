"""Shell: the shipped plate verifier model, read from package data once per thread and
checked against its card's SHA-256. A model that is missing or altered raises
``PlateModelError``, and ``edge.media.anonymise`` then blurs the whole frame (fails
closed). The model is rebuilt by ``scripts/train_plate_verifier.py``.
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

MODEL = "plate_verifier.onnx"
CARD = "plate_verifier.json"


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
