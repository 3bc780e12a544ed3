"""Shell: ``python -m edge audit verify PATH [--seal-key K0 --checkpoints FILE
--device-key PUB]`` and ``python -m edge audit export PATH``.

PATH is the trail's folder (the state folder) or its active file ``audit.jsonl``; the
rotated segments beside it (``audit.000001.jsonl``...) are part of the trail.
``verify`` reports each segment and whether the one chain across them is intact, or
names the first bad record and why: edited, removed, inserted, reordered, a segment
missing, the beginning removed without the agent's deletion record, a torn line (exit
0 / 1; no trail is exit 2). With the verifier's key it checks every record's
forward-secure seal (``edge.seal``), and with the checkpoints a backend received (one
JSON object per line, the ``audit_checkpoint`` member of each message) and the device's
public key, that the trail holds what the device signed: nothing cut, nothing replaced.
``export`` writes one row per record for a privacy officer (time, event, topic, size,
policy version, clause, reason): never payloads.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.audit import verify_trail
from edge.seal import KEY_BYTES, check_against_checkpoints, parse_checkpoint, verify_seals
from edge.shell.audit_log import read_trail, trail_path

EXPORT_COLUMNS = (
    "seq",
    "time",
    "event",
    "topic",
    "size",
    "payload_sha256",
    "reason_code",
    "policy_version",
    "clause",
    "record_id",
    "counts",
    "consent",
    "detail",
)


def export_rows(path: Path) -> list[dict[str, object]]:
    rows = []
    for segment in read_trail(path):
        for record in segment.records:
            body = record.body()
            rows.append({name: body[name] for name in EXPORT_COLUMNS})
    return rows


def _verify(
    path: Path, seal_key: Path | None, checkpoints: Path | None, device_key: Path | None
) -> int:
    """Print the chain per segment, then the seals and the checkpoints where given."""
    segments = read_trail(path)  # read once: the chain, the seals and the checkpoints
    report = verify_trail(segments)
    for segment in report.segments:
        span = f"records {segment.first_seq}..{segment.last_seq}" if segment.records else "empty"
        print(f"  segment {segment.number}: {segment.records} records ({span}): "
              f"{segment.problem or 'intact'}")  # fmt: skip
    if report.deleted:
        print(f"  {report.deleted} older segment(s) deleted by the agent past retention")
    problems = [] if report.ok else [f"record {report.first_bad_seq}: {report.problem}"]
    records = [r for segment in segments for r in segment.records]
    if seal_key is not None:
        seals = verify_seals(records, _read_seal_key(seal_key))
        if seals.ok and seals.sealed == 0:
            problems.append("no record is sealed")
        elif seals.ok:
            print(
                f"  seals: {seals.sealed} records sealed, valid up to record {seals.last_good_seq}"
            )
        else:
            print(f"  seals: valid up to record {seals.last_good_seq}")
            problems.append(f"record {seals.first_bad_seq}: {seals.problem}")
    if checkpoints is not None:
        if device_key is None:
            raise ValueError("--checkpoints needs --device-key")
        key = serialization.load_pem_public_key(device_key.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{device_key}: not an Ed25519 public key")
        received = [
            parse_checkpoint(json.loads(line))
            for line in checkpoints.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        for result in check_against_checkpoints(records, received, key):
            state = result.problem or "consistent"
            print(f"  checkpoint {result.index} (record {result.seq}): {state}")
            if not result.ok:
                problems.append(f"checkpoint {result.index}: {result.problem}")
        anchored = max((c.seq for c in received), default=0)
        after = [r for r in records if r.seq > anchored]
        if after:  # what a cut there would not show: say so, so nobody reads it as proven
            print(f"  {len(after)} record(s) after the last checkpoint (record {anchored}): "
                  "not anchored yet, a cut there would not show")  # fmt: skip
    if not problems:
        print(f"OK: {report.checked} records, chain intact ({path})")
        return 0
    print(f"TAMPERED or DAMAGED: {problems[0]} ({report.checked} records verified in the chain)")
    for problem in problems[1:]:
        print(f"  also: {problem}")
    return 1


def _read_seal_key(path: Path) -> bytes:
    data = path.read_bytes()
    if len(data) != KEY_BYTES:
        raise ValueError(f"{path}: not a seal key ({len(data)} bytes, expected {KEY_BYTES})")
    return data


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge audit")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("verify", help="check the hash chain of an audit trail")
    p.add_argument("file", type=Path, metavar="PATH", help="the state folder or audit.jsonl")
    p.add_argument("--seal-key", type=Path, help="the verifier's key K0 (from provisioning)")
    p.add_argument("--checkpoints", type=Path, help="checkpoints received, one JSON per line")
    p.add_argument("--device-key", type=Path, help="the device's checkpoint public key (PEM)")
    p = sub.add_parser("export", help="export the audit trail for a privacy officer")
    p.add_argument("file", type=Path, metavar="PATH", help="the state folder or audit.jsonl")
    p.add_argument("--out", type=Path, help="write here instead of standard output")
    p.add_argument("--format", choices=["json", "csv"], default="json")
    args = parser.parse_args(list(argv))
    path: Path = args.file
    if not trail_path(path).is_file():
        print(f"error: no audit trail at {path}", file=sys.stderr)
        return 2
    if args.command == "verify":
        try:
            return _verify(path, args.seal_key, args.checkpoints, args.device_key)
        except (OSError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    rows = export_rows(path)
    if args.format == "json":
        text = json.dumps(rows, indent=1, ensure_ascii=False) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: json.dumps(v) if isinstance(v, dict) else v for k, v in row.items()}
            )
        text = buffer.getvalue()
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {len(rows)} records to {args.out}")
    else:
        sys.stdout.write(text)
    return 0
