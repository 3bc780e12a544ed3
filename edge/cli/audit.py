"""Shell: ``python -m edge audit verify PATH`` and ``python -m edge audit export PATH``.

PATH is the trail's folder (the state folder) or its active file ``audit.jsonl``; the
rotated segments beside it (``audit.000001.jsonl``...) are part of the trail.
``verify`` reports each segment and whether the one chain across them is intact, or
names the first bad record and why: edited, removed, inserted, reordered, a segment
missing, the beginning removed without the agent's deletion record, a torn line (exit
0 / 1; no trail is exit 2). ``export`` writes one row per record for a privacy officer
(time, event, topic, size, policy version, clause, reason): never payloads.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from edge.shell.audit_log import read_trail, trail_path, verify_trail_at

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


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge audit")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("verify", help="check the hash chain of an audit trail")
    p.add_argument("file", type=Path, metavar="PATH", help="the state folder or audit.jsonl")
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
        report = verify_trail_at(path)
        for segment in report.segments:
            span = (
                f"records {segment.first_seq}..{segment.last_seq}" if segment.records else "empty"
            )
            state = segment.problem or "intact"
            print(f"  segment {segment.number}: {segment.records} records ({span}): {state}")
        if report.deleted:
            print(f"  {report.deleted} older segment(s) deleted by the agent past retention")
        if report.ok:
            print(f"OK: {report.checked} records, chain intact ({path})")
            return 0
        print(
            f"TAMPERED or DAMAGED: record {report.first_bad_seq}: {report.problem} "
            f"({report.checked} records verified before it)"
        )
        return 1
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
