"""Shell: the consent state on disk (atomic write, mode 0600).

A file that cannot be read or parsed raises ``StoreError``: consent is never silently
reset, since a reset could re-enable nothing but also hide a withdrawal's record.
"""

from __future__ import annotations

from pathlib import Path

from edge.errors import InputError, StoreError
from edge.policy.consent import ConsentState, from_json, to_json
from edge.shell.state_file import write_atomically


def load_consent(path: Path) -> ConsentState:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ConsentState()
    except (OSError, UnicodeDecodeError) as err:
        raise StoreError(f"{path}: cannot read the consent state: {err}") from err
    try:
        return from_json(text)
    except InputError as err:
        raise StoreError(f"{path}: {err}; move the file aside to reset consent to 'none'") from err


def save_consent(path: Path, state: ConsentState) -> None:
    """Write atomically.

    Raises:
        StoreError: the file cannot be written (full disk, read-only volume).
    """
    try:
        write_atomically(path, to_json(state).encode())
    except OSError as err:
        raise StoreError(f"{path}: cannot save the consent state: {err.strerror}") from err
