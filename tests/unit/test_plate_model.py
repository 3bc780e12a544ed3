"""The committed plate verifiers are the ones the training script declares, and a missing
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


def _declared(name: str) -> dict[str, object]:
    """A config as the training script declares it (read, not imported: the script needs
    torch, which neither README command installs)."""
    tree = ast.parse(SCRIPT.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            assert isinstance(value, dict)
            return value
    raise AssertionError(f"{SCRIPT} declares no {name}")


@pytest.mark.parametrize(
    ("model", "config"), [("plate_verifier", "CONFIG"), ("plate_verifier_large", "LARGE_CONFIG")]
)
def test_each_committed_model_matches_its_card_and_the_training_script(
    model: str, config: str
) -> None:
    card = json.loads((MODELS / f"{model}.json").read_text())
    data = (MODELS / f"{model}.onnx").read_bytes()
    assert hashlib.sha256(data).hexdigest() == card["sha256"]
    assert card["config"] == _declared(config), f"retrain: the script's {config} changed"
    assert len(data) == card["bytes"]
    total = sum(p.stat().st_size for p in MODELS.glob("*.onnx"))
    assert total <= 5 * 1024 * 1024


def test_the_models_are_shipped_as_package_data() -> None:
    folder = resources.files("edge.media").joinpath("models")
    for name in ("plate_verifier.onnx", "plate_verifier_large.onnx"):
        assert folder.joinpath(name).read_bytes()[:4] != b""
    verifier = load_verifier()
    assert verifier.crop == tuple(_declared("CONFIG")["crop"])  # type: ignore[arg-type]
    assert verifier.crop == tuple(_declared("LARGE_CONFIG")["crop"])  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["plate_verifier", "plate_verifier_large"])
def test_an_altered_model_is_refused(tmp_path: Path, name: str) -> None:
    shutil.copytree(MODELS, tmp_path / "models")
    model = tmp_path / "models" / f"{name}.onnx"
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
