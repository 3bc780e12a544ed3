"""The committed plate verifier is the one the training script declares, and a missing
or altered model fails closed (the whole frame blurred), never open."""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from edge.media.anonymise import FallbackReason, anonymise
from edge.shell.plate_model import PlateModelError, load_verifier

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "edge" / "media" / "models"
SCRIPT = ROOT / "scripts" / "train_plate_verifier.py"


def _declared_config() -> object:
    """``CONFIG`` as the training script declares it (read, not imported: the script
    needs torch, which neither README command installs)."""
    tree = ast.parse(SCRIPT.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "CONFIG" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{SCRIPT} declares no CONFIG")


def test_the_committed_model_matches_its_card_and_the_training_script() -> None:
    card = json.loads((MODELS / "plate_verifier.json").read_text())
    data = (MODELS / "plate_verifier.onnx").read_bytes()
    assert hashlib.sha256(data).hexdigest() == card["sha256"]
    assert card["config"] == _declared_config(), "retrain: the script's CONFIG changed"
    assert len(data) == card["bytes"] <= 5 * 1024 * 1024


def test_the_model_is_shipped_as_package_data() -> None:
    folder = resources.files("edge.media").joinpath("models")
    assert folder.joinpath("plate_verifier.onnx").read_bytes()[:4] != b""
    verifier = load_verifier()
    assert verifier.crop == tuple(_declared_config()["crop"])  # type: ignore[index]


def test_an_altered_model_is_refused(tmp_path: Path) -> None:
    shutil.copytree(MODELS, tmp_path / "models")
    model = tmp_path / "models" / "plate_verifier.onnx"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(PlateModelError, match="SHA-256"):
        load_verifier(tmp_path / "models")
    model.unlink()
    with pytest.raises(PlateModelError, match="cannot be read"):
        load_verifier(tmp_path / "models")


def test_a_detector_whose_model_is_gone_blurs_the_whole_frame(tmp_path: Path) -> None:
    def detector(frame: np.ndarray) -> list:  # type: ignore[type-arg]
        load_verifier(tmp_path)  # an empty folder: no model there
        return []

    frame = np.zeros((90, 160, 3), np.uint8)
    frame[40:50, 40:120] = 255
    result = anonymise(frame, budget_s=1.0, monotonic=lambda: 0.0, detector=detector)
    assert result.fallback is FallbackReason.DETECTOR_FAILED
    assert not np.array_equal(result.frame, frame)


def test_the_daemon_says_at_start_whether_the_plate_model_is_usable(tmp_path: Path) -> None:
    from edge.cli.daemon import plate_model_problem

    assert plate_model_problem() is None
    problem = plate_model_problem(tmp_path)
    assert problem is not None
    assert "cannot be read" in problem
