"""The architecture, checked: pure modules do no I/O, and only the transport imports paho."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN_IN_PURE = {
    "paho",
    "socket",
    "ssl",
    "threading",
    "sqlite3",
    "subprocess",
    "time",
    "edge.transport",
    "edge.store",
}

# Shell modules: allowed to perform I/O. Every other module of these packages is pure.
SHELL_MODULES = {
    "edge/__main__.py",
    "edge/agent.py",
    "edge/audit_cli.py",
    "edge/audit_log.py",
    "edge/queue_cli.py",
    "edge/camera_source.py",
    "edge/clock.py",
    "edge/crypto.py",
    "edge/daemon.py",
    "edge/memory.py",
    "edge/notify.py",
    "edge/provision.py",
    "edge/runtime.py",
    "edge/store.py",
    "edge/subject.py",
    "edge/tls.py",
    "edge/transport.py",
    "edge/media/camera.py",
    "edge/media/clip.py",
    "edge/policy/cli.py",
    "edge/policy/consent_file.py",
}
PURE_PACKAGES = ("edge",)
PURE_SIM_MODULES = (
    "firmware_sim/scene.py",
    "firmware_sim/scenarios.py",
    "firmware_sim/device.py",
    "firmware_sim/sensors.py",
)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _is_forbidden(module: str) -> bool:
    return any(module == bad or module.startswith(bad + ".") for bad in FORBIDDEN_IN_PURE)


def _pure_modules() -> list[Path]:
    found = [
        path
        for package in PURE_PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.relative_to(ROOT).as_posix() not in SHELL_MODULES
    ]
    found += [ROOT / name for name in PURE_SIM_MODULES if (ROOT / name).exists()]
    return found


def test_architecture_finds_pure_modules() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in _pure_modules()}
    assert {"edge/model.py", "edge/session.py", "edge/topics.py"} <= names


@pytest.mark.parametrize("path", _pure_modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_pure_module_imports_no_io(path: Path) -> None:
    bad = sorted(m for m in _imports(path) if _is_forbidden(m))
    assert not bad, f"{path.relative_to(ROOT)} is pure but imports {bad}"


def test_only_transport_imports_paho() -> None:
    offenders = [
        path.relative_to(ROOT).as_posix()
        for path in sorted((ROOT / "edge").rglob("*.py"))
        if any(m == "paho" or m.startswith("paho.") for m in _imports(path))
    ]
    assert offenders == ["edge/transport.py"]


def test_architecture_check_catches_an_impure_import(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("import socket\nfrom paho.mqtt import client\n")
    assert sorted(m for m in _imports(sneaky) if _is_forbidden(m)) == ["paho.mqtt", "socket"]
