"""Clip previews kept as JPEG: small while waiting, decoded one at a time for the clip."""

from __future__ import annotations

import platform
from collections.abc import Iterator

import numpy as np
import pytest

from edge.errors import InputError
from edge.media.frames import Frame
from edge.media.preview import CLIP_WIDTH_PX, EncodedFrames, decode_preview, encode_preview
from edge.shell.clip import MAX_CLIP_FRAMES, inspect_clip, make_clip
from edge.shell.memory import tune_malloc


def _scene(seed: int, width: int = 1920, height: int = 1080) -> Frame:
    rng = np.random.default_rng(seed)
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    frame[:] = rng.integers(40, 200, size=3, dtype=np.uint8)
    frame[height // 3 : height // 2, width // 4 : width // 2] = (255, 255, 255)
    return frame


def test_preview_is_small_shrunk_and_close_to_the_frame() -> None:
    frame = _scene(1)
    data = encode_preview(frame)
    assert len(data) < frame.nbytes // 100  # 6 MB of BGR -> a JPEG of tens of KB
    back = decode_preview(data)
    assert back.shape == (360, CLIP_WIDTH_PX, 3)
    expected = frame[::3, ::3]  # 1920 -> 640: every third pixel of a blocky scene
    assert np.abs(back.astype(int) - expected.astype(int)).mean() < 3.0


def test_encoded_frames_is_a_sequence_decoding_on_access() -> None:
    frames = EncodedFrames([encode_preview(_scene(i)) for i in range(4)])
    assert len(frames) == 4
    assert frames.encoded_bytes == sum(len(encode_preview(_scene(i))) for i in range(4))
    assert [f.shape for f in frames] == [(360, 640, 3)] * 4
    assert len(frames[1:3]) == 2
    assert isinstance(frames[0], np.ndarray)


def test_decode_preview_refuses_bytes_that_are_not_a_jpeg() -> None:
    with pytest.raises(InputError, match="JPEG"):
        decode_preview(b"not a jpeg")
    with pytest.raises(InputError, match="frame"):
        encode_preview(np.zeros((4, 4), dtype=np.uint8))


def test_make_clip_takes_a_generator_and_keeps_no_list() -> None:
    made: list[int] = []

    def frames() -> Iterator[Frame]:
        for i in range(12):
            made.append(i)
            yield decode_preview(encode_preview(_scene(i)))

    clip = make_clip(frames(), 10)
    assert made == list(range(12))
    assert inspect_clip(clip).video_frames == 12


def test_make_clip_generator_limits_still_apply() -> None:
    with pytest.raises(InputError, match="no frames"):
        make_clip(iter(()), 10)
    small = np.zeros((16, 16, 3), dtype=np.uint8)
    with pytest.raises(InputError, match=f"more than {MAX_CLIP_FRAMES}"):
        make_clip((small for _ in range(MAX_CLIP_FRAMES + 1)), 10)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_tune_malloc_is_accepted_by_glibc() -> None:
    assert tune_malloc() is True
