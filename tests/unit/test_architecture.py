"""The architecture, checked by rules that cannot go stale.

In ``edge`` the folder says it: everything under ``edge/shell/`` and ``edge/cli/`` may do
I/O; every other module is the pure core (``edge/__main__.py`` only hands over to
``edge.cli.main``, since Python wants it at the package root). A pure module imports
nothing that does I/O or reads the clock or randomness, and calls neither ``open`` nor
``now``. ``certs`` and ``firmware_sim`` mix both kinds in one folder, so each of their
modules says in the first word of its docstring whether it is ``Shell`` or ``Pure``, and
the same check applies. Only the transport imports paho. A module that fits no rule is a
failure, not a silent pass."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("edge", "certs", "firmware_sim")

FORBIDDEN_IN_PURE = {
    "paho",
    "os",
    "socket",
    "ssl",
    "threading",
    "sqlite3",
    "subprocess",
    "time",
    "uuid",
    "random",
    "importlib.resources",
    "edge.shell.transport",
    "edge.shell.store",
    "edge.cli",
}
SHELL_FOLDERS = ("edge/shell", "edge/cli")
FORBIDDEN_CALLS = {"open", "now", "utcnow", "today"}


def _modules() -> list[Path]:
    return [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name


def _in_shell_folder(path: Path) -> bool:
    rel = _rel(path)
    return any(rel.startswith(folder + "/") for folder in SHELL_FOLDERS)


def _kind(path: Path) -> str:
    """``shell`` or ``pure``: by folder in ``edge``, by the docstring's first word
    elsewhere; ``""`` if a ``certs`` or ``firmware_sim`` module says neither."""
    rel = _rel(path)
    if rel == "edge/__main__.py":
        return "shell"  # test_main_only_hands_over: it may only import edge.cli.main
    if rel.startswith("edge/"):
        return "shell" if _in_shell_folder(path) else "pure"
    doc = ast.get_docstring(ast.parse(path.read_text(), filename=str(path))) or ""
    first = doc.split(":", 1)[0].strip().lower() if ":" in doc.split("\n", 1)[0] else ""
    if first.startswith("shell"):
        return "shell"
    return "pure" if first == "pure" else ""


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _calls(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                found.add(func.id)
            elif isinstance(func, ast.Attribute):
                found.add(func.attr)
    return found


def _is_forbidden(module: str) -> bool:
    return any(module == bad or module.startswith(bad + ".") for bad in FORBIDDEN_IN_PURE)


def _declared(path: Path) -> bool:
    return path.name == "__init__.py" and not path.read_text().strip()


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_module_says_whether_it_is_pure_or_shell(path: Path) -> None:
    if _declared(path):
        return  # an empty package marker
    assert _kind(path), f"{path.relative_to(ROOT)}: start its docstring with 'Pure:' or 'Shell:'"


PURE = [path for path in _modules() if not _declared(path) and _kind(path) == "pure"]


@pytest.mark.parametrize("path", PURE, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_pure_module_does_no_io(path: Path) -> None:
    bad = sorted(m for m in _imports(path) if _is_forbidden(m))
    calls = sorted(_calls(path) & FORBIDDEN_CALLS)
    assert not bad, f"{path.relative_to(ROOT)} is pure but imports {bad}"
    assert not calls, f"{path.relative_to(ROOT)} is pure but calls {calls}"


def test_the_core_is_pure() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in PURE}
    assert {
        "edge/model.py",
        "edge/session.py",
        "edge/topics.py",
        "edge/control.py",
        "edge/outbox.py",
        "edge/policy/gate.py",
        "edge/media/plate_candidates.py",
        "edge/media/plate_verifier.py",
        "firmware_sim/scene.py",
    } <= names


@pytest.mark.parametrize(
    "path",
    [p for p in _modules() if p.relative_to(ROOT).as_posix().startswith("edge/")],
    ids=lambda p: p.relative_to(ROOT).as_posix(),
)
def test_edge_docstrings_agree_with_their_folder(path: Path) -> None:
    """The folder decides; a docstring that claims otherwise misleads its reader."""
    if _declared(path):
        return
    doc = ast.get_docstring(ast.parse(path.read_text(), filename=str(path))) or ""
    said = doc.split(":", 1)[0].strip().lower()
    expected = "shell" if _in_shell_folder(path) or path.name == "__main__.py" else "pure"
    assert said.startswith(expected), (
        f"{path.relative_to(ROOT)} lives where modules are {expected}; its docstring "
        f"should start with '{expected.capitalize()}:'"
    )


def test_main_only_hands_over() -> None:
    main = ROOT / "edge" / "__main__.py"
    assert _imports(main) == {"edge.cli.main", "edge.cli.main.run"}


def test_only_transport_imports_paho() -> None:
    offenders = [
        path.relative_to(ROOT).as_posix()
        for path in sorted((ROOT / "edge").rglob("*.py"))
        if any(m == "paho" or m.startswith("paho.") for m in _imports(path))
    ]
    assert offenders == ["edge/shell/transport.py"]


def test_architecture_check_catches_an_impure_module(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text(
        '"""Pure: says so."""\nimport socket\nfrom os import path\n'
        "from paho.mqtt import client\nopen('x')\n"
    )
    assert _kind(sneaky) == "pure"
    assert sorted(m for m in _imports(sneaky) if _is_forbidden(m)) == [
        "os",
        "os.path",
        "paho.mqtt",
        "paho.mqtt.client",
        "socket",
    ]
    assert _calls(sneaky) & FORBIDDEN_CALLS == {"open"}
    silent = tmp_path / "silent.py"
    silent.write_text('"""A module that does not say what it is."""\n')
    assert _kind(silent) == ""
