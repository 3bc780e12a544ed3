"""Pure: anonymise a frame before it can leave, failing closed.

``anonymise`` runs the plate detector under a time budget. If the detector raises, or
returns after the budget, the frame is NOT sent as it is: the safe fallback is the whole
frame pixelated and blurred (``blur_everything``), and the result says why, so the caller
counts and audits it. The clock is a parameter (``monotonic``), so this stays testable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from edge.media.blur import blur_everything, blur_regions
from edge.media.frames import Frame, validate_frame
from edge.media.plates import detect_plates
from edge.model import Box

Detector = Callable[[Frame], list[Box]]


class FallbackReason(StrEnum):
    DETECTOR_FAILED = "detector_failed"
    OVER_BUDGET = "over_budget"


@dataclass(frozen=True, slots=True)
class Anonymised:
    frame: Frame = field(repr=False)
    boxes: tuple[Box, ...]
    fallback: FallbackReason | None
    regions_blurred: int
    detect_s: float


def anonymise(
    frame: Frame,
    budget_s: float,
    monotonic: Callable[[], float],
    detector: Detector = detect_plates,
) -> Anonymised:
    """Blur every detected plate, or the whole frame if detection fails or overruns.

    Raises:
        InputError: ``frame`` is not a BGR uint8 HxWx3 image (nothing is returned for it).
    """
    checked = validate_frame(frame)
    start = monotonic()
    try:
        boxes = detector(checked)
    except Exception:  # noqa: BLE001 - fail closed on any detector failure; reported in the result
        return Anonymised(
            blur_everything(checked), (), FallbackReason.DETECTOR_FAILED, 1, monotonic() - start
        )
    elapsed = monotonic() - start
    if elapsed > budget_s:
        return Anonymised(blur_everything(checked), (), FallbackReason.OVER_BUDGET, 1, elapsed)
    return Anonymised(blur_regions(checked, boxes), tuple(boxes), None, len(boxes), elapsed)
