"""Camera source: reads a video file made in the test; a bad source is a clear CameraError."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import InputError
from edge.shell.camera import CameraError, open_source


def _write_video(path: Path, count: int) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (64, 48))
    assert writer.isOpened()
    for i in range(count):
        frame = np.full((48, 64, 3), i * 20, dtype=np.uint8)
        writer.write(frame)
    writer.release()


def test_open_source_reads_every_frame_of_a_file(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    _write_video(path, 7)
    with open_source(str(path)) as source:
        frames = []
        while (frame := source.read()) is not None:
            frames.append(frame)
        assert source.fps == pytest.approx(10.0)
        assert source.is_file
    assert len(frames) == 7
    assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in frames)


def test_open_source_missing_file_is_a_clear_camera_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(CameraError, match="cannot open source") as caught:
        open_source(str(missing))
    assert isinstance(caught.value, InputError)
