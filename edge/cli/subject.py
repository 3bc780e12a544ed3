"""Shell: the data subject's rights on the device (policy §8): export and erase.

    python -m edge subject export --config FILE [--out PATH]
    python -m edge subject erase --config FILE --yes

``export`` writes, as JSON, everything the device holds about its user: the consent
state (with the receipts' counters and sources), the metadata of every queued item (never
payloads: they are the user's own data, but the export must not become a second copy of
snapshots), the accepted policy version and audio setting, and the audit trail.

``erase`` deletes the local personal data: the outbox (queued snapshots, clips...), the
consent state, and the audit trail's details; it leaves a verifiable record that it did.
The audit trail is not deleted but *compacted*: its records are replaced by one ``ERASED``
record that names the sequence number and hash of the last erased record and how many
records were erased; the agent chains its next records from it, so the trail stays
verifiable (``edge audit verify``) and a privacy officer can see that an erase happened.

Run it with the daemon stopped (it refuses when the outbox store is locked).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from edge.audit import AuditEvent, chain, verify_trail
from edge.cli.daemon import load_config
from edge.config import AgentConfig
from edge.errors import ConfigError, EdgeError, StoreError
from edge.policy.consent import to_json
from edge.shell.audit_log import read_trail, segment_paths
from edge.shell.consent_file import load_consent
from edge.shell.crypto import load_or_create_key
from edge.shell.seal_key import SEAL_FILE, SealKey
from edge.shell.state_file import write_atomically
from edge.shell.store import OUTBOX_FILE, SqliteOutboxStore


def export(config: AgentConfig) -> dict[str, object]:
    state_dir = config.device.state_dir
    consent = load_consent(state_dir / "consent.json")
    items: list[dict[str, object]] = []
    store_path = state_dir / OUTBOX_FILE
    if store_path.exists():
        store = SqliteOutboxStore(
            store_path, load_or_create_key(config.outbox_key_file, store=store_path)
        )
        try:
            items = [
                {
                    "record_id": m.record_id,
                    "topic": m.topic,
                    "purpose": m.purpose.value,
                    "size": m.size,
                    "expires_at": m.expires_at.isoformat() if m.expires_at else None,
                    "policy_version": m.policy_version,
                    "clause": m.clause,
                }
                for m in store.meta()
            ]
        finally:
            store.close()
    agent_state_path = state_dir / "agent.json"
    agent_state = json.loads(agent_state_path.read_text()) if agent_state_path.exists() else {}
    trail = [r for segment in read_trail(state_dir / "audit.jsonl") for r in segment.records]
    return {
        "device_serial": config.device.serial,
        "exported_at": datetime.now(UTC).isoformat(),
        "agent_state": agent_state,
        "consent": json.loads(to_json(consent)),
        "queued_items": items,
        "audit_trail": [record.body() | {"hash": record.hash} for record in trail],
    }


def erase(config: AgentConfig) -> dict[str, int]:
    """Delete local personal data and leave a verifiable ERASED record. Returns counts."""
    state_dir = config.device.state_dir
    counts = {"queued_items": 0, "audit_records": 0, "consent_entries": 0}
    store_path = state_dir / OUTBOX_FILE
    if store_path.exists():
        store = SqliteOutboxStore(
            store_path, load_or_create_key(config.outbox_key_file, store=store_path)
        )
        counts["queued_items"] = store.count()
        store.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{store_path}{suffix}").unlink(missing_ok=True)
    consent_path = state_dir / "consent.json"
    if consent_path.exists():
        counts["consent_entries"] = len(load_consent(consent_path).entries)
        consent_path.unlink()
    audit_path = state_dir / "audit.jsonl"
    segments = read_trail(audit_path)
    records = [r for segment in segments for r in segment.records]
    counts["audit_records"] = len(records)
    if not verify_trail(segments).ok and audit_path.exists():
        raise StoreError(f"{audit_path}: the audit trail does not verify; not erasing it")
    for _, segment in segment_paths(audit_path):  # every segment is compacted too
        segment.unlink()
    last = records[-1] if records else None
    # The compacted trail starts with one ERASED record that names the hash and sequence
    # number of the last erased record: anyone holding that hash (a backend that received
    # it, an earlier export) can tie the old chain to the new one, and verify() passes.
    now = datetime.now(UTC).isoformat()
    seal_path = state_dir / SEAL_FILE
    seal_with = SealKey(seal_path).current() if seal_path.exists() else None
    anchor = chain(
        None,
        AuditEvent.ERASED,
        now,
        seal_with,
        counts=counts,
        detail=(
            f"data subject erase: records 1..{last.seq if last else 0} compacted; "
            f"last hash {last.hash if last else 'none'}"
        ),
    )
    write_atomically(audit_path, (anchor.to_json() + "\n").encode())
    return counts


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge subject")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("export", help="export what the device holds about its user")
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--out", type=Path)
    p = sub.add_parser("erase", help="delete local personal data, keeping a verifiable record")
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")
    args = parser.parse_args(list(argv))
    try:
        config = load_config(args.config)
        if args.command == "export":
            text = json.dumps(export(config), indent=1, ensure_ascii=False) + "\n"
            if args.out:
                args.out.write_text(text, encoding="utf-8")
                print(f"wrote {args.out}")
            else:
                sys.stdout.write(text)
            return 0
        if not args.yes:
            message = "error: erase deletes the queue, consents and audit details; add --yes"
            print(message, file=sys.stderr)
            return 2
        counts = erase(config)
        print(
            f"erased {counts['queued_items']} queued item(s), {counts['consent_entries']} consent "
            f"entr(y/ies), {counts['audit_records']} audit record(s); the trail now starts with an "
            "ERASED record"
        )
        return 0
    except ConfigError as err:
        for issue in err.issues:
            print(f"error: {issue}", file=sys.stderr)
        return 2
    except EdgeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
