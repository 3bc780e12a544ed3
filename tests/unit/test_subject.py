"""The data subject's rights: export everything held, erase it with a verifiable record."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from edge.audit import AuditEvent
from edge.model import ConsentStatus, Priority, Purpose
from edge.outbox import Outbox, OutboxItem
from edge.policy.consent import ConsentEntry, ConsentState
from edge.shell.audit_log import AuditLog, read_records, segment_paths, verify_file
from edge.shell.consent_file import save_consent
from edge.shell.crypto import load_or_create_key
from edge.shell.store import SqliteOutboxStore
from tests.cli import run_edge

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _device(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    key = load_or_create_key(state / "outbox.key")
    box = Outbox(SqliteOutboxStore(state / "outbox.sqlite3", key), 1 << 20)
    box.enqueue(
        OutboxItem(
            "r1",
            "devices/SN0001/alarm/snapshot",
            b"JPEG-of-the-street",
            1,
            False,
            Purpose.NOTIFICATION,
            Priority.SNAPSHOT,
            NOW,
            None,
            "en-2023-01-10",
            "en-2023-01-10#row11",
        )
    )
    box.close()
    save_consent(
        state / "consent.json",
        ConsentState(
            {
                "diagnostics": ConsentEntry(
                    ConsentStatus.GRANTED, "en-2023-01-10", NOW.isoformat(), "receipt #3"
                )
            },
            3,
        ),
    )
    log = AuditLog(state / "audit.jsonl")
    for i in range(3):
        log.append(AuditEvent.QUEUED, NOW.isoformat(), record_id=f"r{i}")
    log.close()
    config = tmp_path / "agent.toml"
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    keyfile = tmp_path / "k.pem"
    keyfile.write_text("x")
    keyfile.chmod(0o600)
    config.write_text(
        f'[device]\nserial = "SN0001"\nstate_dir = "{state}"\n[policy]\nversion = "en-2023-01-10"\n'
        f'[tls]\nca = "{cert}"\ncert = "{cert}"\nkey = "{keyfile}"\n'
    )
    return config


def _subject(*args: str) -> subprocess.CompletedProcess[str]:
    return run_edge("subject", *args)


def test_subject_export_lists_consent_queue_and_trail_without_payloads(tmp_path: Path) -> None:
    config = _device(tmp_path)
    result = _subject("export", "--config", str(config))
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["consent"]["entries"]["diagnostics"]["status"] == "granted"
    assert [i["record_id"] for i in body["queued_items"]] == ["r1"]
    assert len(body["audit_trail"]) == 3
    assert "JPEG-of-the-street" not in result.stdout


def test_subject_erase_deletes_and_leaves_a_verifiable_record(tmp_path: Path) -> None:
    config = _device(tmp_path)
    state = tmp_path / "state"
    last_hash = read_records(state / "audit.jsonl").records[-1].hash
    refused = _subject("erase", "--config", str(config))
    assert refused.returncode == 2
    result = _subject("erase", "--config", str(config), "--yes")
    assert result.returncode == 0, result.stderr
    assert not (state / "outbox.sqlite3").exists()
    assert not (state / "consent.json").exists()
    records = read_records(state / "audit.jsonl").records
    assert [r.event for r in records] == [AuditEvent.ERASED]
    assert last_hash in records[0].detail
    assert records[0].counts == {"queued_items": 1, "audit_records": 3, "consent_entries": 1}
    log = AuditLog(state / "audit.jsonl")  # the agent goes on chaining from it
    log.append(AuditEvent.STARTED, NOW.isoformat())
    log.close()
    assert verify_file(state / "audit.jsonl").ok


def test_subject_erase_compacts_every_segment_of_a_rotated_trail(tmp_path: Path) -> None:
    config = _device(tmp_path)
    state = tmp_path / "state"
    log = AuditLog(state / "audit.jsonl", segment_bytes=2048)
    for i in range(40):
        log.append(AuditEvent.ACKED, NOW.isoformat(), record_id=f"a{i}")
        log.sync()
    log.close()
    assert len(segment_paths(state / "audit.jsonl")) >= 2
    exported = json.loads(_subject("export", "--config", str(config)).stdout)
    assert len(exported["audit_trail"]) == 43  # every segment, oldest first
    result = _subject("erase", "--config", str(config), "--yes")
    assert result.returncode == 0, result.stderr
    assert segment_paths(state / "audit.jsonl") == []
    records = read_records(state / "audit.jsonl").records
    assert [r.event for r in records] == [AuditEvent.ERASED]
    assert records[0].counts["audit_records"] == 43
    assert verify_file(state / "audit.jsonl").ok
