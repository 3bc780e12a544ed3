"""Shell: frames from a real source through OpenCV (V4L2 index, RTSP URL or video file)."""

from __future__ import annotations

from types import TracebackType

import cv2

from edge.errors import InputError
from edge.media.frames import Frame, validate_frame


class CameraError(InputError):
    """The source cannot be opened or read."""


class FrameSource:
    """Validated BGR frames from ``cv2.VideoCapture``; ``read()`` is None at the end."""

    def __init__(self, capture: cv2.VideoCapture, name: str, is_file: bool = False) -> None:
        self._capture = capture
        self.name = name
        self.is_file = is_file  # a recorded file, to be paced at its frame rate

    @property
    def fps(self) -> float:
        value = float(self._capture.get(cv2.CAP_PROP_FPS))
        return value if value > 0 else 10.0

    def read(self) -> Frame | None:
        ok, frame = self._capture.read()
        if not ok or frame is None:
            return None
        return validate_frame(frame)

    def close(self) -> None:
        self._capture.release()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_source(source: int | str) -> FrameSource:
    """Open a V4L2 device index, an RTSP/HTTP URL or a video file.

    Raises:
        CameraError: the source does not open (missing file, no device, bad URL).
    """
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        capture.release()
        kind = "device" if isinstance(source, int) else "source"
        raise CameraError(f"camera: cannot open {kind} {source!r}")
    is_file = isinstance(source, str) and "://" not in source
    return FrameSource(capture, str(source), is_file)
