"""Pure: a small frame-differencing motion detector for real cameras.

Doorbell SoCs report motion from a PIR sensor or the ISP; when we read a plain video
source instead, this stands in: compare each frame (downscaled, gray, blurred) with a
running background and fire when enough of the picture changed, then stay quiet for a
cooldown so one visitor gives one alarm.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.media.frames import Frame

WORK_WIDTH_PX = 160


@dataclass(frozen=True, slots=True)
class MotionState:
    background: NDArray[np.float32] | None = None
    cooldown_frames: int = 0


def _small_gray(frame: Frame) -> NDArray[np.float32]:
    height, width = frame.shape[:2]
    scale = WORK_WIDTH_PX / width
    small = cv2.resize(
        frame, (WORK_WIDTH_PX, max(1, round(height * scale))), interpolation=cv2.INTER_AREA
    )
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    return cv2.GaussianBlur(gray, (5, 5), 0).astype(np.float32)


def detect_motion(
    state: MotionState,
    frame: Frame,
    threshold: float = 0.02,
    cooldown: int = 30,
    learn_rate: float = 0.05,
) -> tuple[MotionState, bool]:
    """Feed one frame; return the new state and whether an alarm fires now.

    Args:
        threshold: share of pixels that must change (by more than 25 grey levels).
        cooldown: frames to stay quiet after an alarm.
    """
    gray = _small_gray(frame)
    if state.background is None or state.background.shape != gray.shape:
        return MotionState(gray, 0), False
    changed = float(np.mean(np.abs(gray - state.background) > 25.0))
    background = (1.0 - learn_rate) * state.background + learn_rate * gray
    if state.cooldown_frames > 0:
        return MotionState(background, state.cooldown_frames - 1), False
    if changed >= threshold:
        return MotionState(background, cooldown), True
    return MotionState(background, 0), False
