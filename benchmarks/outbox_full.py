"""Benchmark: the cost of queueing into a full outbox, and of a purge.

Once the queue is at ``max_queue_bytes``, each new item evicts older, less important
ones (rule 5). That choice must come from the items' clear metadata (priority, sequence,
size, purpose, topic): decrypting every queued payload to choose one victim made each
enqueue cost 0.2-0.4 s with 1,000 queued 64 KiB clips. Median of 5 runs.

    .venv/bin/python benchmarks/outbox_full.py [ITEMS]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge.model import Priority, Purpose
from edge.outbox import Outbox, OutboxItem
from edge.shell.store import SqliteOutboxStore

CLIP_BYTES = 64 * 1024
RUNS = 5


def _item(now: datetime, purpose: Purpose, priority: Priority, size: int) -> OutboxItem:
    return OutboxItem(
        uuid.uuid4().hex,
        "devices/SN0001/clip",
        os.urandom(size),
        1,
        False,
        purpose,
        priority,
        now,
        now + timedelta(days=7),
        "en-2020-01-19",
        "en-2020-01-19#row12",
    )


def one_run(work: Path, items: int) -> tuple[float, float]:
    """(ms per enqueue into a full queue, ms for a purge of one purpose)."""
    now = datetime.now(UTC)
    store = SqliteOutboxStore(work / "outbox.sqlite3", os.urandom(32), "NORMAL")
    outbox = Outbox(store, items * (CLIP_BYTES + 64))
    for start in range(0, items, 100):
        outbox.enqueue_many(
            [
                _item(now, Purpose.CLOUD_STORAGE, Priority.CLIP, CLIP_BYTES)
                for _ in range(min(100, items - start))
            ]
        )
    times = []
    for _ in range(20):  # each evicts one clip
        item = _item(now, Purpose.NOTIFICATION, Priority.SNAPSHOT, CLIP_BYTES)
        t0 = time.perf_counter()
        outbox.enqueue(item)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    outbox.purge_purpose(Purpose.CLOUD_STORAGE)
    purge = time.perf_counter() - t0
    store.close()
    return statistics.median(times) * 1000, purge * 1000


def main() -> None:
    items = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    enqueue, purge = [], []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as tmp:
            e, p = one_run(Path(tmp), items)
        enqueue.append(e)
        purge.append(p)
    print(
        f"{items} queued {CLIP_BYTES // 1024} KiB items, full queue: enqueue "
        f"{statistics.median(enqueue):.2f} ms (median of {RUNS} runs; "
        f"{min(enqueue):.2f}-{max(enqueue):.2f}), purge of {items} items "
        f"{statistics.median(purge):.1f} ms ({min(purge):.1f}-{max(purge):.1f})"
    )


if __name__ == "__main__":
    main()
