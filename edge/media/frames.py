"""Pure: the Frame type and its validation at the boundary.

A Frame is a BGR image, ``uint8``, shape ``(H, W, 3)``, C-contiguous or not. Everything
downstream trusts a frame that passed ``validate_frame``.
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

from edge.errors import InputError

Frame: TypeAlias = NDArray[np.uint8]

MAX_FRAME_SIDE_PX = 8192  # larger than any camera we target (8K UHD is 7680 wide)
MIN_FRAME_SIDE_PX = 8


def validate_frame(frame: object) -> Frame:
    """Check that ``frame`` is a BGR uint8 HxWx3 array and return it typed.

    Raises:
        InputError: with what was expected and what was found.
    """
    if not isinstance(frame, np.ndarray):
        raise InputError(f"frame: expected a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise InputError(f"frame: expected dtype uint8, got {frame.dtype}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise InputError(f"frame: expected shape (H, W, 3) BGR, got {tuple(frame.shape)}")
    height, width = int(frame.shape[0]), int(frame.shape[1])
    if min(height, width) < MIN_FRAME_SIDE_PX:
        raise InputError(
            f"frame: expected at least {MIN_FRAME_SIDE_PX}x{MIN_FRAME_SIDE_PX} pixels, "
            f"got {width}x{height}"
        )
    if max(height, width) > MAX_FRAME_SIDE_PX:
        raise InputError(
            f"frame: expected at most {MAX_FRAME_SIDE_PX} pixels a side, got {width}x{height}"
        )
    return frame
