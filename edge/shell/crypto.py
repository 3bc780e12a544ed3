"""Shell: the per-device key that encrypts the outbox at rest (32 random bytes, mode 0600)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from edge.errors import StoreError, StoreKeyError

KEY_BYTES = 32


def load_or_create_key(path: Path, store: Path | None = None) -> bytes:
    """Read the key, or create it (0600 in a 0700 folder) on first start.

    A key is created only when ``store`` (the outbox it opens) does not exist yet: a
    missing key beside an existing queue is an unmounted or lost key volume, and a new
    key would make every queued item unreadable.

    Raises:
        StoreKeyError: the key is missing although ``store`` exists.
        StoreError: the file is readable by group/others, unreadable, or not 32 bytes.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if store is not None and store.exists():
            raise StoreKeyError(
                f"{path}: the outbox key is missing, but the outbox {store} exists; it is "
                "left as it is. Restore the key file (is its volume mounted?), or move the "
                "outbox aside to start with an empty queue."
            ) from None
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = os.urandom(KEY_BYTES)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        return key
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise StoreError(
            f"{path}: outbox key is accessible by group/others (mode {stat.S_IMODE(mode):04o}); "
            f"run: chmod 600 {path}"
        )
    try:
        key = path.read_bytes()
    except OSError as err:
        raise StoreError(f"{path}: cannot read the outbox key: {err.strerror}") from err
    if len(key) != KEY_BYTES:
        raise StoreError(f"{path}: outbox key must be {KEY_BYTES} bytes, found {len(key)}")
    return key
