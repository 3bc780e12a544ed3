"""Shell: ``python -m edge queue PATH``: what waits in a device's outbox, and what it dropped.

PATH is the device's state folder or its ``outbox.sqlite3``. Read-only and keyless: it
shows counts, sizes and times per purpose and priority, never topics or payloads (those
are encrypted), so it is safe to run on a live device, next to the daemon, e.g. after an
outage to see what is still waiting and what expired. Exit 0, or 2 with one line on a
missing or unreadable store.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from edge.errors import StoreError
from edge.shell.store import OUTBOX_FILE, QueueSummary, queue_summary


def render(summary: QueueSummary) -> str:
    lines = [
        f"outbox {summary.path}: {summary.items} item(s) waiting, {summary.bytes:,} bytes "
        f"({summary.disk_bytes:,} bytes on disk)"
    ]
    if summary.groups:
        lines.append(
            f"  {'purpose':<15}{'priority':<13}{'items':>7}{'bytes':>12}  {'oldest':<26}next expiry"
        )
        for g in summary.groups:
            expiry = g.next_expiry.isoformat(timespec="seconds") if g.next_expiry else "never"
            lines.append(
                f"  {g.purpose:<15}{g.priority:<13}{g.items:>7}{g.bytes:>12,}  "
                f"{g.oldest.isoformat(timespec='seconds'):<26}{expiry}"
            )
    dropped = ", ".join(f"{name} {count}" for name, count in sorted(summary.dropped.items()))
    lines.append(f"dropped so far: {dropped or 'nothing'}")
    return "\n".join(lines)


def as_json(summary: QueueSummary) -> str:
    return json.dumps(
        {
            "path": str(summary.path),
            "items": summary.items,
            "bytes": summary.bytes,
            "disk_bytes": summary.disk_bytes,
            "groups": [
                {
                    "purpose": g.purpose,
                    "priority": g.priority,
                    "items": g.items,
                    "bytes": g.bytes,
                    "oldest": g.oldest.isoformat(),
                    "next_expiry": g.next_expiry.isoformat() if g.next_expiry else None,
                }
                for g in summary.groups
            ],
            "dropped": summary.dropped,
        },
        indent=1,
    )


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m edge queue",
        description="what waits in a device's outbox (read-only, no key needed)",
    )
    parser.add_argument("path", type=Path, help=f"the state folder or its {OUTBOX_FILE}")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(list(argv))
    path: Path = args.path
    if path.is_dir():
        path = path / OUTBOX_FILE
    try:
        summary = queue_summary(path)
    except StoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(as_json(summary) if args.json else render(summary))
    return 0
