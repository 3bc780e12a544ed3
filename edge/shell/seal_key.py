"""Shell: the device's keys for the audit trail (``edge.seal``): the evolving seal key and
the Ed25519 key that signs checkpoints. Both are made at provisioning
(``python -m edge provision``, or ``provision_keys`` here for the simulator).

``audit-seal.key`` holds the current epoch and its key (8 + 32 bytes). At each epoch
boundary the next key is computed, written *over* the old bytes of the same file and
fsynced before the next record is sealed, and the old key's bytes in memory are zeroed.
What Python cannot promise: copies the interpreter made while hashing (``hmac`` works
on an immutable copy) may linger in freed memory until reused; on a real camera the
same loop in C would wipe them too. The first key (``K0``) is written only to the
verifier's file, which provisioning says to move off the device; the device starts at
epoch 1 with ``K1``.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.audit import AuditRecord
from edge.errors import StoreError
from edge.model import Purpose
from edge.policy.catalogue import FieldName
from edge.policy.gate import Candidate
from edge.seal import KEY_BYTES, evolve, sign_checkpoint

logger = logging.getLogger(__name__)

SEAL_FILE = "audit-seal.key"
SIGNING_FILE = "device-signing.key"
VERIFY_FILE = "audit-verify.PRIVATE-FOR-THE-VERIFIER.key"
SIGNING_PUB_FILE = "device-signing.pub"


class SealKey:
    """The current epoch's key. The trail (``AuditLog``) asks ``due`` before each record;
    when an epoch is full (``every_records``), old (``every_s`` of record time) or the
    agent just started, it writes the epoch's closing record with the old key, makes it
    durable, then calls ``advance``."""

    def __init__(self, path: Path, every_records: int = 1000, every_s: float = 3600.0) -> None:
        self.path = path
        self._every_records = every_records
        self._every_s = every_s
        try:
            data = path.read_bytes()
        except OSError as err:
            raise StoreError(f"{path}: cannot read the audit seal key: {err.strerror}") from err
        if len(data) != 8 + KEY_BYTES:
            raise StoreError(f"{path}: not an audit seal key ({len(data)} bytes)")
        self.epoch = int.from_bytes(data[:8], "big")
        self._key = bytearray(data[8:])
        self.records = 0  # sealed in this epoch (by this process)
        self._started: datetime | None = None
        self._fresh = True  # a restart is a new epoch: what came before is out of reach

    def current(self) -> tuple[int, bytes]:
        return self.epoch, bytes(self._key)

    def due(self, time: str) -> bool:
        """Whether the epoch must be closed before a record made at ``time``."""
        moment = datetime.fromisoformat(time)
        if self._started is None:
            self._started = moment
        late = (moment - self._started).total_seconds() >= self._every_s
        return self._fresh or self.records >= self._every_records or late

    def count(self) -> None:
        self.records += 1

    def advance(self, time: str) -> None:
        """Next epoch: the new key is written over the old one's bytes and fsynced, and the
        old key is zeroed in memory, before anything else is sealed."""
        new = evolve(bytes(self._key))
        epoch = self.epoch + 1
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, epoch.to_bytes(8, "big") + new, 0)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._key[:] = bytes(KEY_BYTES)
        self._key[:] = new
        self.epoch, self.records = epoch, 0
        self._started, self._fresh = datetime.fromisoformat(time), False


def load_seal_key(state_dir: Path, every_records: int, every_s: float) -> SealKey | None:
    """The seal key, or None where the device was not provisioned with one (the trail
    is then hash-chained only, and the agent says so at start)."""
    path = state_dir / SEAL_FILE
    if not path.exists():
        logger.warning("no %s: the audit trail is chained but not sealed", path)
        return None
    return SealKey(path, every_records, every_s)


def load_signing_key(state_dir: Path) -> Ed25519PrivateKey | None:
    """The device's checkpoint signing key, or None (no checkpoints are published).

    Raises:
        StoreError: the file is there but unusable (the daemon stops and says which).
    """
    path = state_dir / SIGNING_FILE
    if not path.exists():
        logger.warning("no %s: no audit checkpoints are published", path)
        return None
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as err:
        raise StoreError(f"{path}: cannot load the checkpoint signing key: {err}") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise StoreError(f"{path}: not an Ed25519 private key")
    return key


def provision_keys(state_dir: Path, out_dir: Path) -> tuple[Path, Path]:
    """Make the seal key (``K1``, epoch 1, in the state folder; ``K0`` for the verifier in
    ``out_dir``) and the checkpoint signing pair (private in the state folder, public in
    ``out_dir``), unless they exist. Returns the verifier's key file and the public key."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    seal_path, verify_path = state_dir / SEAL_FILE, out_dir / VERIFY_FILE
    if not seal_path.exists():
        first = os.urandom(KEY_BYTES)  # K0: the verifier's only, never on the device
        _write_new(verify_path, first)
        _write_new(seal_path, (1).to_bytes(8, "big") + evolve(first))
    signing_path, public_path = state_dir / SIGNING_FILE, out_dir / SIGNING_PUB_FILE
    if not signing_path.exists():
        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_new(signing_path, private)
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        public_path.write_bytes(public)
    return verify_path, public_path


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


class Checkpointer:
    """When to sign the trail's head: every ``every_records`` records or ``every_s``
    seconds of device time since the last checkpoint, and at a clean stop."""

    def __init__(
        self, key: Ed25519PrivateKey, serial: str, every_records: int, every_s: float
    ) -> None:
        self._key = key
        self._serial = serial
        self._every_records = every_records
        self._every_s = every_s
        self._seq: int | None = None  # the head of the last checkpoint
        self._at: datetime | None = None

    def due(self, head: AuditRecord | None, now: datetime, force: bool = False) -> Candidate | None:
        """The checkpoint to publish now (through the gate, like every message), or None."""
        if head is None or head.seq == self._seq:
            return None
        if self._seq is None or self._at is None:
            self._seq, self._at = head.seq, now  # from here on: a restart is not a head change
            if not force:
                return None
        records = head.seq - self._seq
        late = (now - self._at).total_seconds() >= self._every_s
        if not (force or records >= self._every_records or late):
            return None
        self._seq, self._at = head.seq, now
        checkpoint = sign_checkpoint(
            self._key, self._serial, head, head.epoch or 0, now.isoformat()
        )
        return Candidate(Purpose.AGENT, {FieldName.AUDIT_CHECKPOINT: checkpoint.to_json()}, now)
