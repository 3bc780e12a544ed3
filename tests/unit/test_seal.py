"""Forward-secure seals and signed checkpoints against an attacker who holds a copy of the
device's state, current seal key included (issue 20)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.audit import AuditEvent, AuditRecord, chain, verify
from edge.errors import StoreError
from edge.seal import (
    Checkpoint,
    KeyChain,
    check_against_checkpoints,
    evolve,
    seal,
    sign_checkpoint,
    verify_seals,
)
from edge.shell.audit_log import AuditLog, read_trail
from edge.shell.seal_key import (
    SEAL_FILE,
    SIGNING_FILE,
    VERIFY_FILE,
    SealKey,
    load_signing_key,
    provision_keys,
)
from tests.cli import run_edge

START = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
EVERY = 5  # records per epoch in these tests


def _device(tmp_path: Path, records: int = 30) -> tuple[Path, bytes, list[AuditRecord]]:
    """A sealed trail of ``records`` records; returns the state folder, K0 and the records."""
    state, verifier = tmp_path / "state", tmp_path / "verifier"
    provision_keys(state, verifier)
    log = AuditLog(state / "audit.jsonl", sealer=SealKey(state / SEAL_FILE, EVERY, 3600))
    for i in range(records):
        moment = (START + timedelta(seconds=i)).isoformat()
        log.append(AuditEvent.ACKED, moment, size=100 + i, record_id=f"r{i}")
    log.close()
    first = (verifier / VERIFY_FILE).read_bytes()
    return state, first, [r for s in read_trail(state) for r in s.records]


def _stolen_key(state: Path) -> tuple[int, bytes]:
    data = (state / SEAL_FILE).read_bytes()
    return int.from_bytes(data[:8], "big"), data[8:]


def _reseal(records: list[AuditRecord], start: int, stolen: tuple[int, bytes]) -> list[AuditRecord]:
    """The attacker recomputes the chain from ``start`` on, sealing what they can: records
    of the stolen epoch or later with their key, earlier ones relabelled to that epoch."""
    epoch, key = stolen
    keys = {epoch: key}
    out = list(records[:start])
    for record in records[start:]:
        e = max(record.epoch or 0, epoch)
        while e not in keys:
            keys[max(keys) + 1] = evolve(keys[max(keys)])
        fields = {
            f.name: getattr(record, f.name)
            for f in dataclasses.fields(record)
            if f.name not in {"seq", "time", "event", "prev", "epoch", "hash", "seal"}
        }
        prev = out[-1] if out else None
        made = chain(prev, record.event, record.time, (e, keys[e]), **fields)
        out.append(dataclasses.replace(made, seq=record.seq) if prev is None else made)
    return out


def test_a_sealed_trail_verifies_and_epochs_advance(tmp_path: Path) -> None:
    state, first, records = _device(tmp_path)
    report = verify_seals(records, first)
    assert report.ok, report.problem
    assert report.sealed == 36  # 30 records and the closing record of epochs 1 to 6
    assert {r.epoch for r in records} == {1, 2, 3, 4, 5, 6, 7}  # every 5 records
    closed = [r for r in records if r.event is AuditEvent.EPOCH_CLOSED]
    assert [r.epoch for r in closed] == [1, 2, 3, 4, 5, 6]
    epoch, key = _stolen_key(state)
    assert epoch == 7
    assert key == KeyChain(first).key(7)
    assert first not in (state / SEAL_FILE).read_bytes()  # K0 is not on the device


def test_a_restart_starts_a_new_epoch_and_the_old_key_is_overwritten(tmp_path: Path) -> None:
    state, first, _ = _device(tmp_path, records=3)
    before = (state / SEAL_FILE).read_bytes()
    log = AuditLog(state / "audit.jsonl", sealer=SealKey(state / SEAL_FILE, EVERY, 3600))
    log.append(AuditEvent.STARTED, START.isoformat())
    log.close()
    after = (state / SEAL_FILE).read_bytes()
    assert int.from_bytes(after[:8], "big") == int.from_bytes(before[:8], "big") + 1
    assert before[8:] not in after
    records = [r for s in read_trail(state) for r in s.records]
    assert verify_seals(records, first).ok


def test_rewriting_an_earlier_epoch_with_the_stolen_key_is_detected(tmp_path: Path) -> None:
    state, first, records = _device(tmp_path)
    stolen = _stolen_key(state)  # the attacker is at epoch 7 and holds its key
    edited = list(records)
    edited[7] = dataclasses.replace(records[7], size=1)  # epoch 3: "this clip was smaller"
    forged = _reseal(edited, 7, stolen)
    assert verify(forged).ok  # the hash chain alone is fooled: it was recomputed
    report = verify_seals(forged, first)
    assert not report.ok
    assert report.first_bad_seq == 8
    assert "epoch jumps from 2 to 7" in report.problem


def test_a_record_sealed_with_another_epochs_key_is_named(tmp_path: Path) -> None:
    _, first, records = _device(tmp_path)
    last = records[-1]
    wrong = seal(KeyChain(first).key(6), last.hash)
    report = verify_seals([*records[:-1], dataclasses.replace(last, seal=wrong)], first)
    assert not report.ok
    assert report.problem == "sealed with the key of epoch 6, not of its epoch 7"


def test_dropping_the_end_of_an_earlier_epoch_is_detected(tmp_path: Path) -> None:
    """The attacker removes epoch 5's last records and its closing record, and re-seals
    the rest with the stolen key: epoch 5 then ends without being closed."""
    state, first, records = _device(tmp_path)
    five = [i for i, r in enumerate(records) if r.epoch == 5]
    start, end = five[2], five[-1] + 1  # epoch 5's last records and its closing record
    cut = [dataclasses.replace(r, seq=n) for n, r in enumerate(records[:start] + records[end:], 1)]
    forged = _reseal(cut, start, _stolen_key(state))
    assert verify(forged).ok
    report = verify_seals(forged, first)
    assert not report.ok
    assert "was not closed" in report.problem or "jumps" in report.problem


def _checkpoints(
    records: list[AuditRecord], key: Ed25519PrivateKey, at: list[int]
) -> list[Checkpoint]:
    by_seq = {r.seq: r for r in records}
    return [
        sign_checkpoint(key, "SN0001", by_seq[n], by_seq[n].epoch or 0, START.isoformat())
        for n in at
    ]


def _signing(state: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key((state / SIGNING_FILE).read_bytes(), None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def test_cutting_the_last_records_is_caught_by_the_next_checkpoint(tmp_path: Path) -> None:
    state, _, records = _device(tmp_path)
    key = _signing(state)
    checkpoints = _checkpoints(records, key, [10, 20, 30])
    results = check_against_checkpoints(records[:25], checkpoints, key.public_key())
    assert [r.ok for r in results] == [True, True, False]
    assert "truncated: the trail ends at record 25" in results[2].problem


def test_a_replayed_checkpoint_and_a_forged_one_are_refused(tmp_path: Path) -> None:
    state, _, records = _device(tmp_path)
    key = _signing(state)
    good = _checkpoints(records, key, [10, 20])
    forged = _checkpoints(records, Ed25519PrivateKey.generate(), [30])
    received = [good[0], good[1], good[0], forged[0]]
    results = check_against_checkpoints(records, received, key.public_key())
    assert [r.ok for r in results] == [True, True, False, False]
    assert results[2].problem.startswith("replayed")
    assert results[3].problem == "forged: bad signature"


def test_a_record_replaced_under_a_checkpoint_is_named(tmp_path: Path) -> None:
    state, _, records = _device(tmp_path)
    key = _signing(state)
    checkpoints = _checkpoints(records, key, [28])
    forged = _reseal(
        [*records[:27], dataclasses.replace(records[27], size=7), *records[28:]],
        27,
        _stolen_key(state),
    )
    results = check_against_checkpoints(forged, checkpoints, key.public_key())
    assert not results[0].ok
    assert "not the one the device signed" in results[0].problem


EDITS = st.sampled_from(["field", "delete", "swap", "insert"])


@settings(max_examples=60, deadline=None)
@given(edit=EDITS, index=st.integers(0, 23), data=st.data())
def test_no_edit_of_an_earlier_epoch_goes_unnoticed(
    tmp_path_factory: pytest.TempPathFactory, edit: str, index: int, data: st.DataObject
) -> None:
    """Any single edit to a record before the stolen epoch, with the chain recomputed and
    everything re-sealed that the stolen key can seal, fails the seals or the chain."""
    state, first, records = _device(tmp_path_factory.mktemp("trail"))
    stolen = _stolen_key(state)
    edited = list(records)
    if edit == "field":
        edited[index] = dataclasses.replace(records[index], size=data.draw(st.integers(0, 10**6)))
    elif edit == "delete":
        del edited[index]
    elif edit == "swap":
        edited[index], edited[index + 1] = edited[index + 1], edited[index]
    else:
        edited.insert(index, records[index])
    renumbered = [dataclasses.replace(r, seq=n) for n, r in enumerate(edited, start=1)]
    forged = _reseal(renumbered, index, stolen)
    assert (records[index].epoch or 0) < stolen[0]  # an earlier epoch than the stolen one
    assert not (verify(forged).ok and verify_seals(forged, first).ok)


def test_audit_verify_with_the_keys_and_checkpoints(tmp_path: Path) -> None:
    state, _, records = _device(tmp_path)
    key = _signing(state)
    received = tmp_path / "checkpoints.jsonl"
    lines = [json.dumps(c.to_json()) for c in _checkpoints(records, key, [10, 36])]
    received.write_text("\n".join(lines) + "\n")
    args = [
        "--seal-key", str(tmp_path / "verifier" / VERIFY_FILE),
        "--checkpoints", str(received),
        "--device-key", str(tmp_path / "verifier" / "device-signing.pub"),
    ]  # fmt: skip
    result = run_edge("audit", "verify", str(state), *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "36 records sealed, valid up to record 36" in result.stdout
    assert "checkpoint 2 (record 36): consistent" in result.stdout
    lines = (state / "audit.jsonl").read_text().splitlines()
    (state / "audit.jsonl").write_text("\n".join(lines[:-3]) + "\n")  # cut the last three
    result = run_edge("audit", "verify", str(state), *args)
    assert result.returncode == 1
    assert "truncated: the trail ends at record 33" in result.stdout
    public = serialization.load_pem_public_key(
        (tmp_path / "verifier" / "device-signing.pub").read_bytes()
    )
    assert isinstance(public, Ed25519PublicKey)


def test_unusable_key_files_are_refused_with_their_path(tmp_path: Path) -> None:
    state = tmp_path / "state"
    provision_keys(state, tmp_path / "verifier")
    (state / SIGNING_FILE).write_text("not a key")
    with pytest.raises(StoreError, match=r"device-signing\.key: cannot load"):
        load_signing_key(state)
    (state / SEAL_FILE).write_bytes(b"short")
    with pytest.raises(StoreError, match="not an audit seal key"):
        SealKey(state / SEAL_FILE)
