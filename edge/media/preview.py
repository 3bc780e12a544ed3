"""Pure: the event clip's recent frames, kept small until a clip is made.

A camera keeps the last few seconds for the event clip. As raw 640 px BGR frames that is
about 0.7 MB a frame, 21 MB for a 3 s clip at 10 fps, held all the time; as JPEG
(quality 90) it is about 30-60 KB a frame. ``EncodedFrames`` is a read-only sequence of
such JPEGs that decodes one frame at a time when the clip is encoded, so at most one raw
preview frame is alive at once. Previews are re-encoded as H.264 at CRF 28 anyway, so a
JPEG at quality 90 adds no visible loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

import cv2
import numpy as np

from edge.errors import InputError
from edge.media.frames import Frame, validate_frame

CLIP_WIDTH_PX = 640  # event clips are previews
PREVIEW_JPEG_QUALITY = 90


def shrink(frame: Frame, width_px: int = CLIP_WIDTH_PX) -> Frame:
    """The frame scaled to ``width_px`` wide (even height), or itself if not wider."""
    height, width = frame.shape[:2]
    if width <= width_px:
        return frame
    size = (width_px, max(2, round(height * width_px / width)) // 2 * 2)
    return np.asarray(cv2.resize(frame, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def encode_preview(frame: Frame) -> bytes:
    """One preview frame as JPEG bytes (shrunk to ``CLIP_WIDTH_PX`` first).

    Raises:
        InputError: not a valid frame, or the encoder refused it.
    """
    small = shrink(validate_frame(frame))
    ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, PREVIEW_JPEG_QUALITY])
    if not ok:
        raise InputError("preview: JPEG encoding failed")
    return bytes(data)


def decode_preview(data: bytes) -> Frame:
    """Raises InputError if ``data`` is not a JPEG OpenCV can decode."""
    frame = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise InputError("preview: not a decodable JPEG")
    return validate_frame(np.asarray(frame, dtype=np.uint8))


class EncodedFrames(Sequence[Frame]):
    """Frames stored as JPEG, decoded on access (see the module docstring)."""

    __slots__ = ("_jpegs",)

    def __init__(self, jpegs: Sequence[bytes]) -> None:
        self._jpegs = tuple(jpegs)

    def __len__(self) -> int:
        return len(self._jpegs)

    @overload
    def __getitem__(self, index: int) -> Frame: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Frame]: ...
    def __getitem__(self, index: int | slice) -> Frame | Sequence[Frame]:
        if isinstance(index, slice):
            return EncodedFrames(self._jpegs[index])
        return decode_preview(self._jpegs[index])

    @property
    def encoded_bytes(self) -> int:
        return sum(len(j) for j in self._jpegs)
