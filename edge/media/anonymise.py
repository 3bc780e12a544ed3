"""Pure: anonymise a frame before it can leave, failing closed.

``anonymise`` runs the plate detector under a time budget. If the detector raises, or
returns after the budget, the frame is NOT sent as it is: the safe fallback is the whole
frame pixelated and blurred (``blur_everything``), and the result says why, so the caller
counts and audits it. The clock is a parameter (``monotonic``), so this stays testable.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
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


CARRY_FRAMES = 2  # a plate found in frame k is also blurred in frames k-2 .. k+2


def anonymise_clip(
    frames: Iterable[Frame],
    budget_s: float,
    monotonic: Callable[[], float],
    detector: Detector = detect_plates,
    carry: int = CARRY_FRAMES,
) -> Iterator[Anonymised]:
    """``anonymise`` for every frame of a clip, with each frame's boxes also blurred in the
    ``carry`` frames before and after it: a plate that detection misses in one frame (motion
    blur, a glint) stays covered when it was found next to it. Streams: at most
    ``2 * carry + 1`` frames are held, and each frame fails closed on its own.

    Raises:
        InputError: a frame is not a BGR uint8 HxWx3 image.
    """
    window: deque[tuple[Frame, Anonymised]] = deque()

    def emit(i: int) -> Anonymised:
        frame, own = window[i]
        if own.fallback is not None:
            return own
        near = {
            b for j, (_, other) in enumerate(window) if abs(j - i) <= carry for b in other.boxes
        }
        boxes = tuple(sorted(near, key=lambda b: (b.y, b.x, b.w, b.h)))
        return Anonymised(blur_regions(frame, boxes), boxes, None, len(boxes), own.detect_s)

    for frame in frames:
        checked = validate_frame(frame)
        window.append((checked, anonymise(checked, budget_s, monotonic, detector)))
        if len(window) > carry:
            yield emit(len(window) - 1 - carry)
        if len(window) > 2 * carry:
            window.popleft()
    for i in range(max(0, len(window) - carry), len(window)):
        yield emit(i)
