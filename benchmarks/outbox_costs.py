"""Benchmark: what one durable message costs the agent, step by step, without a network.

It explains the ratio of ``transport_bench.py``: raw paho spends ~40 us per QoS 1 message;
every step below is work the agent does per message on top of it (the policy gate and
envelope, AES-GCM, the SQLite insert, the send query, the delete after PUBACK, two
hash-chained audit records). Steps run in the batch sizes the agent uses (256 queued per
commit, 50 sent or acknowledged per commit). Median of 5 runs of 5,000 messages.

    .venv/bin/python benchmarks/outbox_costs.py
"""

from __future__ import annotations

import hashlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edge.audit import AuditEvent, chain_line
from edge.model import Priority, Purpose
from edge.outbox import Outbox, OutboxItem
from edge.policy.catalogue import FieldName
from edge.policy.consent import ConsentState
from edge.policy.gate import Candidate, decide
from edge.release import release
from edge.shell.shipped import load_manifest
from edge.shell.store import SqliteOutboxStore

N = 5000
RUNS = 5


def _items(now: datetime) -> list[OutboxItem]:
    return [
        OutboxItem(
            uuid.uuid4().hex,
            "devices/SN0001/status",
            b"x" * 300,
            1,
            False,
            Purpose.DEVICE_STATUS,
            Priority.STATUS,
            now,
            now + timedelta(days=7),
            "en-2020-01-19",
            "en-2020-01-19#row6",
        )
        for _ in range(N)
    ]


def one_run(work: Path) -> dict[str, float]:
    """Microseconds per message for each step."""
    now = datetime.now(UTC)
    manifest = load_manifest("en-2020-01-19")
    consent = ConsentState()
    candidate = Candidate(
        Purpose.DEVICE_STATUS,
        {FieldName.SERIAL_NUMBER: "SN0001", FieldName.ONLINE_STATUS: "online"},
        now,
    )
    costs: dict[str, float] = {}

    def timed(name: str, step: Callable[[], object]) -> None:
        start = time.perf_counter()
        step()
        costs[name] = (time.perf_counter() - start) / N * 1e6

    def gate_and_envelope() -> None:
        for _ in range(N):
            decision = decide(candidate, manifest, consent, True, now)
            release(
                record_id=uuid.uuid4().hex,
                topic="devices/SN0001/status",
                purpose=decision.purpose,
                priority=Priority.STATUS,
                created_at=now,
                kept={str(k): v for k, v in decision.kept.items()},
                clauses={str(k): v for k, v in decision.clauses.items()},
                removed_count=len(decision.removed),
                policy_version=decision.policy_version,
                retention=decision.retention,
            )

    timed("policy gate + JSON envelope", gate_and_envelope)
    aead = AESGCM(os.urandom(32))
    timed(
        "AES-GCM seal (300 B; part of the insert)",
        lambda: [aead.encrypt(os.urandom(12), b"x" * 320, b"r" * 32) for _ in range(N)],
    )
    items = _items(now)
    store = SqliteOutboxStore(work / f"{uuid.uuid4().hex}.sqlite3", os.urandom(32))
    box = Outbox(store, 1 << 30)
    timed(
        "SQLite insert, sealed (synchronous=FULL)",
        lambda: [box.enqueue_many(items[i : i + 256]) for i in range(0, N, 256)],
    )
    sent: list[OutboxItem] = []

    def take() -> None:
        for _ in range(N // 50):
            sent.extend(box.next_batch(now, 50)[0])

    def acknowledge() -> None:
        for start in range(0, N, 50):
            box.ack([i.record_id for i in sent[start : start + 50]])

    timed("take for sending", take)
    timed("delete after PUBACK (synchronous=NORMAL)", acknowledge)
    store.close()

    def audit(seal_key: bytes | None = None) -> None:
        last = None
        for item in items:
            for event in (AuditEvent.QUEUED, AuditEvent.ACKED):
                last, _ = chain_line(
                    last,
                    event,
                    now.isoformat(),
                    None if seal_key is None else (1, seal_key),
                    topic=item.topic,
                    payload_sha256=hashlib.sha256(item.payload).hexdigest(),
                    size=len(item.payload),
                    qos=1,
                    record_id=item.record_id,
                    policy_version=item.policy_version,
                    clause=item.clause,
                )

    timed("two audit records (hash chain)", audit)
    # Forward-secure seals (edge/seal.py): one HMAC per record; the epoch's closing
    # record and key update (one fsync) every 1,000 records are amortised below 0.1 us.
    timed("two audit records, sealed (in its place)", lambda: audit(os.urandom(32)))
    return costs


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        runs = [one_run(Path(tmp)) for _ in range(RUNS)]
    total = 0.0
    medians = {name: statistics.median(r[name] for r in runs) for name in runs[0]}
    for name, median in medians.items():
        if "part of" not in name and "in its place" not in name:
            total += median
        print(f"{name:42s} {median:6.1f} us/message")
    print(f"{'sum (one thread, no network)':42s} {total:6.1f} us/message")
    sealed = total - medians["two audit records (hash chain)"]
    sealed += medians["two audit records, sealed (in its place)"]
    print(f"{'sum with sealed audit records':42s} {sealed:6.1f} us/message "
          f"({100 * (sealed / total - 1):+.1f} %)")  # fmt: skip


if __name__ == "__main__":
    main()
