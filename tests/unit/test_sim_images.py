"""``--images``: photos of any size become frames of one camera size (clips need it)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from firmware_sim.__main__ import load_images


def test_photos_of_different_sizes_are_letterboxed_to_one_camera_size(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.full((300, 400, 3), 200, np.uint8))
    cv2.imwrite(str(tmp_path / "b.png"), np.full((1080, 1920, 3), 200, np.uint8))
    frames = load_images(tmp_path)
    assert [f.shape for f in frames] == [(720, 1280, 3), (720, 1280, 3)]
    assert frames[0][:, :100].max() == 0  # a 4:3 photo: black bars left and right
    assert frames[0][360, 640].tolist() == [200, 200, 200]
