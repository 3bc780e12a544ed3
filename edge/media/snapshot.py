"""Pure: alarm snapshots as metadata-free JPEGs.

cv2 writes a bare JFIF file, but a snapshot may also come from elsewhere (a camera's own
JPEG); ``strip_jpeg_metadata`` walks the marker segments and drops every APP1-APP15
(EXIF, XMP, ICC...) and COM segment, so nothing but pixels leaves the device.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.errors import InputError
from edge.media.frames import Frame, validate_frame

SOI = b"\xff\xd8"
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RST0-7: no length field
_SOS = 0xDA
_APP0 = 0xE0


def jpeg_segments(data: bytes) -> list[int]:
    """The marker bytes of every segment up to the start of scan (e.g. ``[0xE0, 0xDB, ...]``).

    Raises:
        InputError: not a JPEG, or a truncated segment.
    """
    if not data.startswith(SOI):
        raise InputError("snapshot: not a JPEG (no SOI marker)")
    markers: list[int] = []
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise InputError(f"snapshot: corrupt JPEG at byte {pos}")
        marker = data[pos + 1]
        markers.append(marker)
        if marker in _STANDALONE:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2 or pos + 2 + length > len(data):
            raise InputError(f"snapshot: truncated JPEG segment at byte {pos}")
        if marker == _SOS:
            return markers
        pos += 2 + length
    raise InputError("snapshot: JPEG has no image data (no SOS marker)")


def strip_jpeg_metadata(data: bytes) -> bytes:
    """The same JPEG without APP1-APP15 and COM segments (JFIF APP0 is kept).

    Raises:
        InputError: not a JPEG, or a truncated segment.
    """
    jpeg_segments(data)  # validates the structure first
    out = bytearray(SOI)
    pos = 2
    while True:
        marker = data[pos + 1]
        if marker in _STANDALONE:
            out += data[pos : pos + 2]
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == _SOS:
            out += data[pos:]
            return bytes(out)
        drop = (0xE1 <= marker <= 0xEF) or marker == 0xFE
        if not drop:
            out += data[pos : pos + 2 + length]
        pos += 2 + length


def encode_snapshot(frame: Frame, quality: int = 80, max_side_px: int = 1280) -> bytes:
    """Scale down to ``max_side_px`` (keeping the aspect), encode as JPEG, strip metadata.

    Raises:
        InputError: a bad frame, or quality/size out of range.
    """
    checked = validate_frame(frame)
    if not 1 <= quality <= 100:
        raise InputError(f"snapshot quality: expected 1..100, got {quality}")
    if not 16 <= max_side_px <= 8192:
        raise InputError(f"snapshot max_side_px: expected 16..8192, got {max_side_px}")
    height, width = checked.shape[:2]
    scale = max_side_px / max(height, width)
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        checked = np.asarray(
            cv2.resize(checked, size, interpolation=cv2.INTER_AREA), dtype=np.uint8
        )
    ok, encoded = cv2.imencode(".jpg", checked, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise InputError("snapshot: JPEG encoding failed")
    return strip_jpeg_metadata(encoded.tobytes())
