"""The verifier's pure rules: what it sees of a candidate, and which boxes it may drop."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from edge.media.plate_verifier import (
    LARGE_JUDGED_SHARE,
    LARGE_SHARE,
    LARGE_THRESHOLD,
    MIN_JUDGED_HEIGHT_PX,
    SMALL_SHARE,
    SMALL_THRESHOLD,
    candidate_scores,
    crop_batch,
    kept_boxes,
    threshold_for,
)
from edge.model import Box


def test_a_crop_keeps_the_box_shape_and_fills_the_rest_with_its_mean() -> None:
    gray = np.zeros((100, 200), np.uint8)
    gray[10:30, 10:90] = 200  # an 80x20 box (4:1) into a 72x24 crop (3:1): 72x18, centred
    blob = crop_batch(gray, [Box(10, 10, 80, 20), Box(500, 500, 5, 5)], (24, 72))
    assert blob.shape == (2, 1, 24, 72)
    assert blob.dtype == np.float32
    assert np.allclose(blob[0, 0, 3:21], 200 / 255)
    assert np.allclose(blob[0, 0, :3], 200 / 255)  # the box's mean, not black
    assert not blob[1].any(), "a box outside the frame gives an empty crop, not an error"


def test_a_wide_box_and_a_square_one_do_not_look_alike() -> None:
    gray = np.full((100, 200), 50, np.uint8)
    gray[40:60, 0:100] = 250
    wide, square = crop_batch(gray, [Box(0, 40, 100, 20), Box(0, 20, 60, 60)], (24, 72))
    assert (wide[0] > 0.9).mean() > 0.9
    assert (square[0] > 0.9).mean() < 0.5


PLATE = Box(100, 100, 120, 30)
CORE = Box(110, 105, 100, 20)


def test_boxes_under_their_threshold_go() -> None:
    far = Box(400, 300, 150, 40)
    kept = kept_boxes([PLATE, far], [CORE, far], [0.9, 0.2], [0.5, 0.5])
    assert kept == [PLATE]


def test_a_dropped_box_that_holds_a_kept_one_stays() -> None:
    """Dropping the whole plate's box and keeping a box over three of its characters
    would leave the other characters readable."""
    part = Box(150, 105, 50, 20)
    kept = kept_boxes([PLATE, part], [CORE, part], [0.1, 0.9], [0.5, 0.5])
    assert set(kept) == {PLATE, part}


def test_a_much_larger_box_does_not_stay_for_a_plate_inside_it() -> None:
    car = Box(0, 0, 600, 400)
    kept = kept_boxes([car, PLATE], [car, CORE], [0.1, 0.9], [0.5, 0.5])
    assert kept == [PLATE]


def test_restoring_does_not_chain_from_a_plate_to_the_car() -> None:
    part = Box(150, 105, 50, 20)
    around = Box(80, 80, 200, 70)  # holds PLATE (restored) but is > 6x the part's area
    kept = kept_boxes([part, PLATE, around], [part, CORE, around], [0.9, 0.1, 0.1], [0.5, 0.5, 0.5])
    assert set(kept) == {part, PLATE}


def test_a_core_too_small_to_judge_is_kept() -> None:
    tiny_core = Box(100, 100, 20, MIN_JUDGED_HEIGHT_PX - 1)
    box = Box(90, 90, 40, 30)
    assert kept_boxes([box], [tiny_core], [0.0], [0.5]) == [box]


def test_small_boxes_need_less_evidence() -> None:
    frame_area = 1920 * 1080
    small = Box(0, 0, 60, 30)
    middle = Box(0, 0, 400, 200)
    large = Box(0, 0, 800, 400)
    assert small.area < SMALL_SHARE * frame_area < middle.area < LARGE_SHARE * frame_area
    assert LARGE_SHARE * frame_area < large.area
    assert threshold_for(small, frame_area, 0.5) == SMALL_THRESHOLD < 0.5
    assert threshold_for(middle, frame_area, 0.5) == 0.5
    assert threshold_for(large, frame_area, 0.5) == LARGE_THRESHOLD > 0.5


def test_a_box_too_small_to_judge_restores_nothing() -> None:
    """A far plate's tiny box is kept unjudged; the larger dropped box around it is the
    verifier's "no", and stays dropped (else every speck grows back a wall)."""
    tiny_core = Box(100, 100, 20, MIN_JUDGED_HEIGHT_PX - 1)
    tiny = Box(95, 95, 30, 20)
    wall = Box(80, 80, 80, 50)
    kept = kept_boxes([tiny, wall], [tiny_core, wall], [0.0, 0.0], [0.5, 0.5])
    assert kept == [tiny]


def test_large_boxes_are_judged_by_the_large_model_and_only_they() -> None:
    frame_area = 1920 * 1080
    far = Box(10, 10, 60, 20)
    fence = Box(0, 0, 900, 300)
    assert far.area < LARGE_JUDGED_SHARE * frame_area < fence.area
    asked: list[list[Box]] = []

    def small(cores: Sequence[Box]) -> NDArray[np.float32]:
        asked.append(list(cores))
        return np.full(len(cores), 0.9, np.float32)

    def large(cores: Sequence[Box]) -> NDArray[np.float32]:
        asked.append(list(cores))
        return np.full(len(cores), 0.1, np.float32)

    core = Box(300, 100, 300, 100)
    scores = candidate_scores([far, fence], [far, core], frame_area, small, large)
    assert scores.tolist() == [np.float32(0.9), np.float32(0.1)]
    assert asked == [[far], [core]]  # each model sees its own boxes' cores, nothing else
    asked.clear()
    assert candidate_scores([far], [far], frame_area, small, large).tolist() == [np.float32(0.9)]
    assert asked == [[far]]  # no large box: the large model does not run
