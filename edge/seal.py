"""Pure: forward-secure seals on audit records and signed checkpoints of the trail's head.

The scheme follows Schneier and Kelsey ("Secure audit logs to support computer
forensics", 1999) and systemd-journald's Forward Secure Sealing (Marson and Poettering,
2013), with a symmetric key chain:

- At provisioning a random 32-byte key ``K0`` is made. The verifier (a privacy officer,
  the backend) keeps it; the device gets ``K1`` and from then on holds only the current
  epoch's key.
- Epoch ``e+1``'s key is ``K(e+1) = HMAC-SHA256(K(e), "edge audit epoch")``: one-way, so
  a key taken from a device at epoch ``e`` cannot give any earlier key.
- Each record's ``seal`` is ``HMAC-SHA256(K(epoch), record hash)``; the record's hash
  covers its ``epoch`` and ``prev``. The device moves to the next epoch every N records or
  T minutes and erases the old key before it writes the next record.

So an attacker who takes the device at epoch ``e`` can rewrite records of epoch ``e`` and
later (they hold that key), but cannot alter, remove or forge a record of an earlier
epoch without a seal failing. What the key chain cannot show, the last records cut off,
is what checkpoints are for: every M records (and at a clean stop) the agent publishes
the trail's head (count, hash, epoch), signed with the device's Ed25519 key, so the
backend holds anchors the device cannot take back (as Certificate Transparency's signed
tree heads).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.audit import GENESIS, AuditEvent, AuditRecord

KEY_BYTES = 32
_EVOLVE = b"edge audit epoch"
MAX_EPOCH_SEARCH = 64  # how far a misplaced seal is looked for, to name its epoch


def evolve(key: bytes) -> bytes:
    """The next epoch's key (one-way)."""
    return hmac.new(key, _EVOLVE, hashlib.sha256).digest()


def seal(key: bytes, record_hash: str) -> str:
    return hmac.new(key, bytes.fromhex(record_hash), hashlib.sha256).hexdigest()


class KeyChain:
    """The verifier's side: the key of any epoch from ``K0``, computed once each."""

    def __init__(self, initial: bytes) -> None:
        self._keys = [initial]

    def key(self, epoch: int) -> bytes:
        while len(self._keys) <= epoch:
            self._keys.append(evolve(self._keys[-1]))
        return self._keys[epoch]


@dataclass(frozen=True, slots=True)
class SealReport:
    ok: bool
    sealed: int  # records whose seal verified
    last_good_seq: int | None
    first_bad_seq: int | None = None
    problem: str = ""


def verify_seals(records: Iterable[AuditRecord], initial_key: bytes) -> SealReport:
    """Each record sealed with its own epoch's key; epochs go up one at a time, each
    ended by its ``EPOCH_CLOSED`` record (sealed with the key it closes), so a record
    cannot be dropped from an earlier epoch or moved into a later one; a trail that
    starts at GENESIS starts at epoch 1 (or with an erase). A record without a seal in a
    sealed trail is a failure (removing seals is an edit)."""
    chain = KeyChain(initial_key)
    sealed = 0
    previous: AuditRecord | None = None
    last_good: int | None = None

    def bad(record: AuditRecord, problem: str) -> SealReport:
        return SealReport(False, sealed, last_good, record.seq, problem)

    for record in records:
        if record.epoch is None or not record.seal:
            if sealed == 0 and record.epoch is None:
                continue  # written before sealing was set up: reported as unsealed
            return bad(record, "record without a seal")
        starts = previous is None and record.prev == GENESIS
        if starts and record.epoch != 1 and record.event is not AuditEvent.ERASED:
            return bad(record, f"the trail starts at epoch {record.epoch}, not 1")  # erase: any
        if previous is not None and previous.epoch is not None and record.epoch != previous.epoch:
            if record.epoch < previous.epoch:
                return bad(record, f"epoch goes back from {previous.epoch} to {record.epoch}")
            if record.epoch > previous.epoch + 1:
                return bad(record, f"epoch jumps from {previous.epoch} to {record.epoch}")
            if previous.event is not AuditEvent.EPOCH_CLOSED:
                return bad(record, f"epoch {previous.epoch} was not closed: records are missing")
        if not hmac.compare_digest(record.seal, seal(chain.key(record.epoch), record.hash)):
            return bad(record, _why(record, record.epoch, chain))
        previous, last_good = record, record.seq
        sealed += 1
    return SealReport(True, sealed, last_good)


def _why(record: AuditRecord, epoch: int, chain: KeyChain) -> str:
    for other in range(max(0, epoch - MAX_EPOCH_SEARCH), epoch + MAX_EPOCH_SEARCH):
        if other != epoch and hmac.compare_digest(record.seal, seal(chain.key(other), record.hash)):
            return f"sealed with the key of epoch {other}, not of its epoch {epoch}"
    return "seal invalid: the record was changed after it was sealed, or forged"


# -- checkpoints ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The trail's head as the device signed it: ``seq`` records, the last one's hash."""

    serial: str
    seq: int
    head: str
    epoch: int
    at: str  # ISO time of the device's clock
    signature: bytes

    def body(self) -> dict[str, object]:
        return {
            "serial": self.serial,
            "seq": self.seq,
            "head": self.head,
            "epoch": self.epoch,
            "at": self.at,
        }

    def to_json(self) -> dict[str, object]:
        return {**self.body(), "signature": base64.b64encode(self.signature).decode("ascii")}


def _canonical(body: Mapping[str, object]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign_checkpoint(
    key: Ed25519PrivateKey, serial: str, head: AuditRecord, epoch: int, at: str
) -> Checkpoint:
    unsigned = Checkpoint(serial, head.seq, head.hash, epoch, at, b"")
    return Checkpoint(serial, head.seq, head.hash, epoch, at, key.sign(_canonical(unsigned.body())))


def parse_checkpoint(data: Mapping[str, object]) -> Checkpoint:
    """Raises ValueError on a malformed checkpoint."""
    try:
        seq, epoch = data["seq"], data["epoch"]
        if not isinstance(seq, int) or not isinstance(epoch, int):
            raise ValueError("seq and epoch must be integers")
        signature = base64.b64decode(str(data["signature"]), validate=True)
        return Checkpoint(
            str(data["serial"]), seq, str(data["head"]), epoch, str(data["at"]), signature
        )
    except (KeyError, binascii.Error) as err:
        raise ValueError(f"malformed checkpoint: {err}") from err


def checkpoint_signed(checkpoint: Checkpoint, key: Ed25519PublicKey) -> bool:
    try:
        key.verify(checkpoint.signature, _canonical(checkpoint.body()))
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True, slots=True)
class CheckpointResult:
    index: int  # the checkpoint's place in what the backend received, from 1
    seq: int
    ok: bool
    problem: str = ""


def check_against_checkpoints(
    records: Sequence[AuditRecord], checkpoints: Sequence[Checkpoint], key: Ed25519PublicKey
) -> list[CheckpointResult]:
    """Each checkpoint, in the order the backend received them: signed by the device,
    never older than one before it (a replay), and matched by the trail: the record at
    its ``seq`` has its ``head`` hash. A trail that ends before a checkpoint was cut."""
    by_seq = {r.seq: r for r in records}
    last = records[-1].seq if records else 0
    results: list[CheckpointResult] = []
    newest = 0
    for index, cp in enumerate(checkpoints, start=1):
        if not checkpoint_signed(cp, key):
            results.append(CheckpointResult(index, cp.seq, False, "forged: bad signature"))
            continue
        if cp.seq < newest:
            why = f"replayed: older (record {cp.seq}) than one received before it ({newest})"
            results.append(CheckpointResult(index, cp.seq, False, why))
            continue
        newest = max(newest, cp.seq)
        record = by_seq.get(cp.seq)
        if record is None and cp.seq > last:
            why = f"truncated: the trail ends at record {last}, the device had signed {cp.seq}"
            results.append(CheckpointResult(index, cp.seq, False, why))
        elif record is None:
            results.append(CheckpointResult(index, cp.seq, True, "before the oldest record kept"))
        elif record.hash != cp.head:
            why = f"record {cp.seq} is not the one the device signed (edited or replaced)"
            results.append(CheckpointResult(index, cp.seq, False, why))
        else:
            results.append(CheckpointResult(index, cp.seq, True))
    return results
