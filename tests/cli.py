"""Run the project's own command line as a user would: a subprocess from the repo root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_edge(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``python -m edge ARGS``: exit code, stdout and stderr as text."""
    return subprocess.run(
        [sys.executable, "-m", "edge", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )
