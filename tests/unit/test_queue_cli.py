"""``python -m edge queue``: what waits in an outbox, read-only, keyless, never a payload."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge.model import Priority, Purpose
from edge.outbox import Outbox, OutboxItem
from edge.shell.store import OUTBOX_FILE, SqliteOutboxStore
from tests.cli import run_edge

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SECRET = b"PLATE-WX4821K"


def _item(record_id: str, purpose: Purpose, priority: Priority, age_s: int) -> OutboxItem:
    created = NOW - timedelta(seconds=age_s)
    return OutboxItem(
        record_id,
        f"devices/SN0001/{purpose.value}",
        SECRET * 10,
        1,
        False,
        purpose,
        priority,
        created,
        created + timedelta(days=7),
        "en-2023-01-10",
        "en-2023-01-10#row11",
    )


def _queue(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return run_edge("queue", *argv)


def _device(state: Path) -> Path:
    store = SqliteOutboxStore(state / OUTBOX_FILE, os.urandom(32))
    box = Outbox(store, 1 << 20)
    box.enqueue_many(
        [
            _item("a1", Purpose.NOTIFICATION, Priority.ALARM_EVENT, 300),
            _item("a2", Purpose.NOTIFICATION, Priority.ALARM_EVENT, 60),
            _item("s1", Purpose.NOTIFICATION, Priority.SNAPSHOT, 120),
            _item("c1", Purpose.CLOUD_STORAGE, Priority.CLIP, 30),
        ]
    )
    box.purge_purpose(Purpose.CLOUD_STORAGE)
    store.close()
    return state / OUTBOX_FILE


def test_queue_lists_groups_and_drops_without_key_or_payloads(tmp_path: Path) -> None:
    path = _device(tmp_path / "state")
    before = path.read_bytes()
    result = _queue([str(tmp_path / "state"), "--json"])
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    size = _item("x", Purpose.NOTIFICATION, Priority.SNAPSHOT, 0).size
    assert (summary["items"], summary["bytes"]) == (3, 3 * size)
    groups = {(g["purpose"], g["priority"]): g for g in summary["groups"]}
    assert set(groups) == {("notification", "alarm_event"), ("notification", "snapshot")}
    alarms = groups[("notification", "alarm_event")]
    assert alarms["items"] == 2
    assert alarms["oldest"] == (NOW - timedelta(seconds=300)).isoformat()
    assert alarms["next_expiry"] == (NOW - timedelta(seconds=300) + timedelta(days=7)).isoformat()
    assert summary["dropped"] == {"purged": 1}
    text = _queue([str(path)])
    assert text.returncode == 0
    assert "3 item(s) waiting" in text.stdout
    assert "purged 1" in text.stdout
    assert "PLATE" not in text.stdout + result.stdout  # never a payload
    assert "devices/SN0001" not in text.stdout  # nor a topic (encrypted at rest)
    assert path.read_bytes() == before  # read-only


def test_queue_missing_or_foreign_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = _queue([str(tmp_path / "nowhere")])
    assert missing.returncode == 2
    assert "no outbox store at" in missing.stderr
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"not a database at all" * 100)
    bad = _queue([str(garbage)])
    assert bad.returncode == 2
    assert "not a readable outbox store" in bad.stderr
    assert "Traceback" not in missing.stderr + bad.stderr
