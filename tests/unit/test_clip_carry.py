"""Clip frames: a plate found in frame k is also blurred in the frames around it."""

from __future__ import annotations

import numpy as np

from edge.media.anonymise import FallbackReason, anonymise_clip
from edge.media.frames import Frame
from edge.model import Box

PLATE = Box(10, 10, 20, 10)


def _frames(n: int) -> list[Frame]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(n)]


def _detector_seeing_only(k: int, calls: list[int]):  # type: ignore[no-untyped-def]
    def detect(frame: Frame) -> list[Box]:
        calls.append(1)
        return [PLATE] if len(calls) - 1 == k else []

    return detect


def test_a_plate_found_in_one_frame_is_blurred_two_frames_either_side() -> None:
    calls: list[int] = []
    out = list(anonymise_clip(_frames(8), 1.0, lambda: 0.0, _detector_seeing_only(4, calls)))
    assert len(out) == 8
    assert [PLATE in a.boxes for a in out] == [False, False, True, True, True, True, True, False]
    assert not np.array_equal(out[2].frame[10:20, 10:30], _frames(8)[2][10:20, 10:30])


def test_short_clips_keep_every_frame_in_order() -> None:
    frames = _frames(2)
    out = list(anonymise_clip(frames, 1.0, lambda: 0.0, lambda f: []))
    assert [np.array_equal(a.frame, f) for a, f in zip(out, frames, strict=True)] == [True, True]


def test_a_failing_frame_is_blurred_whole_and_its_neighbours_still_come() -> None:
    def boom(frame: Frame) -> list[Box]:
        raise RuntimeError("detector down")

    out = list(anonymise_clip(_frames(3), 1.0, lambda: 0.0, boom))
    assert [a.fallback for a in out] == [FallbackReason.DETECTOR_FAILED] * 3
