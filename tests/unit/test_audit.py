"""The audit trail: any edit, removal, insertion or reordering breaks the chain."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from edge.audit import AuditEvent, chain, verify
from edge.shell.audit_log import AuditLog, read_records, verify_file
from tests.cli import run_edge


def _trail(path: Path, n: int = 5) -> None:
    log = AuditLog(path)
    for i in range(n):
        log.append(
            AuditEvent.ACKED,
            f"2026-11-23T12:00:0{i}+00:00",
            topic="devices/SN0001/alarm/event",
            payload_sha256="ab" * 32,
            size=100 + i,
            policy_version="en-2023-01-10",
            clause="en-2023-01-10#row11",
            record_id=f"r{i}",
        )
    log.close()


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_audit_chain_verifies_intact_trail(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _trail(path)
    result = verify_file(path)
    assert result.ok
    assert result.checked == 5


def test_audit_continues_the_chain_after_reopen(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _trail(path, 2)
    _trail(path, 2)
    assert verify_file(path).checked == 4


@pytest.mark.parametrize(
    ("tamper", "problem", "first_bad"),
    [
        (lambda ls: [ls[0], ls[1].replace('"size":101', '"size":999'), *ls[2:]], "edited", 2),
        (lambda ls: [ls[0], *ls[2:]], "chain broken", 3),  # record 2 removed
        (lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], "chain broken", 3),  # reordered
        (lambda ls: [*ls[:2], ls[1], *ls[2:]], "chain broken", 2),  # record 2 inserted again
        (lambda ls: ls[:-1], None, None),  # a cut tail needs an outside anchor (last hash)
    ],
)
def test_audit_verify_detects_tampering(  # type: ignore[no-untyped-def]
    tmp_path: Path, tamper, problem: str | None, first_bad: int | None
) -> None:
    path = tmp_path / "audit.jsonl"
    _trail(path)
    path.write_text("\n".join(tamper(_lines(path))) + "\n")
    result = verify_file(path)
    if problem is None:
        assert result.ok
        assert result.checked == 4
    else:
        assert not result.ok
        assert problem in result.problem
        assert result.first_bad_seq == first_bad


def test_audit_rehashed_edit_is_still_caught_by_the_next_record(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _trail(path)
    records = read_records(path).records
    forged = chain(records[0], AuditEvent.ACKED, records[1].time, size=1)
    lines = _lines(path)
    lines[1] = forged.to_json()
    path.write_text("\n".join(lines) + "\n")
    result = verify_file(path)
    assert not result.ok
    assert result.first_bad_seq == 3


def test_audit_torn_last_line_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _trail(path, 3)
    with path.open("a") as handle:
        handle.write('{"seq":4,"time":"2026')
    result = verify_file(path)
    assert not result.ok
    assert "torn" in result.problem
    log = AuditLog(path)  # reopening keeps the evidence and chains from the last good record
    log.append(AuditEvent.STARTED, "2026-11-23T13:00:00+00:00")
    log.close()
    assert not verify_file(path).ok


def test_audit_records_never_hold_payload_values() -> None:
    record = chain(None, AuditEvent.DENIED, "t", counts={"removed_not_disclosed": 2})
    assert set(json.loads(record.to_json())) >= {"counts", "payload_sha256", "size"}
    assert verify([record]).ok


def test_audit_cli_verify_and_export(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _trail(path, 3)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_edge("audit", *args)

    ok = run("verify", str(path))
    assert ok.returncode == 0
    assert "OK: 3 records" in ok.stdout
    exported = run("export", str(path), "--format", "csv")
    assert exported.returncode == 0
    assert exported.stdout.splitlines()[0].startswith("seq,time,event,topic")
    path.write_text(path.read_text().replace('"size":101', '"size":7'))
    bad = run("verify", str(path))
    assert bad.returncode == 1
    assert "record 2" in bad.stdout
    missing = run("verify", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2
    assert "error: no audit trail" in missing.stderr
