"""``--images``: photos of any size become frames of one camera size (clips need it), and
the plate boxes of ``NAME.txt`` beside a photo follow it, so the leak audit checks them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.model import Box
from firmware_sim.errors import SimError
from firmware_sim.photos import load_images


def test_photos_of_different_sizes_are_letterboxed_to_one_camera_size(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.full((300, 400, 3), 200, np.uint8))
    cv2.imwrite(str(tmp_path / "b.png"), np.full((1080, 1920, 3), 200, np.uint8))
    frames = [f.frame for f in load_images(tmp_path)]
    assert [f.shape for f in frames] == [(720, 1280, 3), (720, 1280, 3)]
    assert frames[0][:, :100].max() == 0  # a 4:3 photo: black bars left and right
    assert frames[0][360, 640].tolist() == [200, 200, 200]


def test_plate_boxes_beside_a_photo_are_mapped_onto_the_letterboxed_frame(
    tmp_path: Path,
) -> None:
    photo = np.full((300, 400, 3), 200, np.uint8)
    photo[100:130, 50:150] = 0  # the "plate"
    cv2.imwrite(str(tmp_path / "car.png"), photo)
    (tmp_path / "car.txt").write_text("car.png\t50\t100\t100\t30\tAB123\n")
    cv2.imwrite(str(tmp_path / "empty.png"), photo)
    frames = load_images(tmp_path)
    (box,) = frames[0].plate_boxes
    # 400x300 scaled by 2.4 to 960x720, centred: 160 px bars left and right.
    assert box == Box(160 + 120, 240, 240, 72)
    assert frames[0].frame[box.y + 1 : box.y + box.h - 1, box.x + 1 : box.x + box.w - 1].max() < 10
    assert frames[1].plate_boxes == ()


def test_a_malformed_box_file_names_the_file_and_line(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "car.png"), np.full((30, 40, 3), 200, np.uint8))
    (tmp_path / "car.txt").write_text("car.png 1 2 3 4\ncar.png one two\n")
    with pytest.raises(SimError, match=r"car.txt:2: expected 'file x y w h'"):
        load_images(tmp_path)


def test_the_demo_streets_are_real_frames_with_their_plates() -> None:
    from firmware_sim.photos import STREETS

    streets = load_images(STREETS)
    assert len(streets) == 4
    assert all(s.frame.shape == (720, 1280, 3) and s.plate_boxes for s in streets)
    assert (STREETS / "LICENSE").read_text().startswith("MIT License")
