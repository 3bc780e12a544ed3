"""Shell: the agent's small durable state (accepted policy version, audio toggle, session counter).

Written atomically (temp file, fsync, rename, fsync of the folder) with mode 0600, so a
power cut leaves either the old or the new state, never a torn one. A file that cannot be
parsed raises ``StoreError``: the agent must not silently fall back to defaults, because a
default could be a more permissive audio toggle than the one the user chose.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from edge.errors import StoreError


@dataclass(frozen=True, slots=True)
class AgentState:
    policy_version: str
    audio_on: bool | None = None  # None: never set; the version's default applies
    session_counter: int = 0


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_agent_state(path: Path, default_version: str) -> AgentState:
    """Read the state, or start from the configured version when there is none yet.

    Raises:
        StoreError: the file exists but is unreadable or malformed.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return AgentState(policy_version=default_version)
    except OSError as err:
        raise StoreError(f"{path}: cannot read agent state: {err.strerror}") from err
    try:
        body = json.loads(raw)
        state = AgentState(
            policy_version=str(body["policy_version"]),
            audio_on=body.get("audio_on"),
            session_counter=int(body.get("session_counter", 0)),
        )
    except (ValueError, KeyError, TypeError) as err:
        raise StoreError(f"{path}: agent state is corrupt ({err}); move it aside to reset") from err
    if state.audio_on is not None and not isinstance(state.audio_on, bool):
        raise StoreError(f"{path}: audio_on must be true, false or null")
    return state


def save_agent_state(path: Path, state: AgentState) -> None:
    write_atomically(path, json.dumps(asdict(state), indent=1).encode())
