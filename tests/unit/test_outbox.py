"""The outbox's rules (one test per rule), and a state machine over both stores."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from edge.model import Priority, Purpose
from edge.outbox import DropReason, InMemoryOutboxStore, Outbox, OutboxItem, OutboxStore
from edge.shell.store import SqliteOutboxStore

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
KEY = bytes(range(32))
_ids = itertools.count()


def item(
    priority: Priority = Priority.ALARM_EVENT,
    size: int = 100,
    purpose: Purpose = Purpose.NOTIFICATION,
    expires_in: timedelta | None = timedelta(days=7),
    record_id: str | None = None,
) -> OutboxItem:
    rid = record_id or f"r{next(_ids)}"
    return OutboxItem(
        record_id=rid,
        topic="devices/SN0001/alarm/event",
        payload=b"p" * (size - len("devices/SN0001/alarm/event")),
        qos=1,
        retain=False,
        purpose=purpose,
        priority=priority,
        created_at=NOW,
        expires_at=NOW + expires_in if expires_in is not None else None,
        policy_version="en-2023-01-10",
        clause="en-2023-01-10#row11",
    )


StoreFactory = Callable[[], OutboxStore]


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    if request.param == "memory":
        shared = InMemoryOutboxStore()
        return lambda: shared
    return lambda: SqliteOutboxStore(tmp_path / "outbox.sqlite3", KEY, synchronous="NORMAL")


def test_outbox_rule1_item_deleted_only_after_ack(make_store: StoreFactory) -> None:
    box = Outbox(make_store(), 10_000)
    box.enqueue(item(record_id="a"))
    batch, _ = box.next_batch(NOW, 10)
    assert [i.record_id for i in batch] == ["a"]
    assert box.pending_count() == 1
    box.ack(["a"])
    assert box.pending_count() == 0


def test_outbox_rule2_requeues_inflight_on_connection_lost(make_store: StoreFactory) -> None:
    box = Outbox(make_store(), 10_000)
    box.enqueue_many([item(record_id="a"), item(record_id="b")])
    first, _ = box.next_batch(NOW, 10)
    assert box.next_batch(NOW, 10) == ([], [])  # all in flight
    box.requeue_inflight()
    again, _ = box.next_batch(NOW, 10)
    assert [i.record_id for i in again] == [i.record_id for i in first] == ["a", "b"]


def test_outbox_rule2_restart_requeues_inflight(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    box = Outbox(SqliteOutboxStore(path, KEY), 10_000)
    box.enqueue(item(record_id="a"))
    box.next_batch(NOW, 10)
    box.close()
    reopened = Outbox(SqliteOutboxStore(path, KEY), 10_000)
    batch, _ = reopened.next_batch(NOW, 10)
    assert [i.record_id for i in batch] == ["a"]
    reopened.close()


def test_outbox_rule3_priority_then_fifo(make_store: StoreFactory) -> None:
    box = Outbox(make_store(), 10_000)
    box.enqueue_many(
        [
            item(Priority.CLIP, record_id="clip"),
            item(Priority.ALARM_EVENT, record_id="alarm1"),
            item(Priority.STATUS, record_id="status"),
            item(Priority.ALARM_EVENT, record_id="alarm2"),
            item(Priority.SNAPSHOT, record_id="snap"),
        ]
    )
    batch, _ = box.next_batch(NOW, 10)
    assert [i.record_id for i in batch] == ["status", "alarm1", "alarm2", "snap", "clip"]


def test_outbox_rule4_expired_items_are_dropped_not_sent(make_store: StoreFactory) -> None:
    box = Outbox(make_store(), 10_000)
    box.enqueue_many([item(record_id="old", expires_in=timedelta(hours=1)), item(record_id="new")])
    batch, drops = box.next_batch(NOW + timedelta(hours=2), 10)
    assert [i.record_id for i in batch] == ["new"]
    assert [(d.record_id, d.reason) for d in drops] == [("old", DropReason.EXPIRED)]
    assert box.counters() == {"expired": 1}


def test_outbox_rule4_sweep_expires_pending_items(make_store: StoreFactory) -> None:
    box = Outbox(make_store(), 10_000)
    box.enqueue_many(
        [
            item(record_id="a", expires_in=timedelta(seconds=10)),
            item(record_id="b", expires_in=None),
        ]
    )
    assert box.expire(NOW) == []
    drops = box.expire(NOW + timedelta(seconds=11))
    assert [d.record_id for d in drops] == ["a"]
    assert box.pending_count() == 1


def test_outbox_rule5_overflow_evicts_lowest_priority_oldest_first(
    make_store: StoreFactory,
) -> None:
    box = Outbox(make_store(), 500)
    box.enqueue_many(
        [
            item(Priority.DIAGNOSTICS, record_id="diag1", purpose=Purpose.DIAGNOSTICS),
            item(Priority.DIAGNOSTICS, record_id="diag2", purpose=Purpose.DIAGNOSTICS),
            item(Priority.CLIP, record_id="clip"),
            item(Priority.ALARM_EVENT, record_id="alarm1"),
            item(Priority.ALARM_EVENT, record_id="alarm2"),
        ]
    )
    drops = box.enqueue(item(Priority.STATUS, size=250, record_id="status"))
    assert [(d.record_id, d.reason) for d in drops] == [
        ("diag1", DropReason.OVERFLOW),
        ("diag2", DropReason.OVERFLOW),
        ("clip", DropReason.OVERFLOW),
    ]
    batch, _ = box.next_batch(NOW, 10)
    assert [i.record_id for i in batch] == ["status", "alarm1", "alarm2"]
    assert box.counters() == {"overflow": 3}


def test_outbox_rule5_refuses_an_item_that_cannot_evict_enough(make_store: StoreFactory) -> None:
    box = Outbox(make_store(), 300)
    box.enqueue_many(
        [item(Priority.ALARM_EVENT, record_id="a1"), item(Priority.ALARM_EVENT, record_id="a2")]
    )
    drops = box.enqueue(
        item(Priority.DIAGNOSTICS, size=200, record_id="d", purpose=Purpose.DIAGNOSTICS)
    )
    assert [(d.record_id, d.reason) for d in drops] == [("d", DropReason.REFUSED)]
    assert box.pending_count() == 2


def test_outbox_rule5_never_evicts_inflight(make_store: StoreFactory) -> None:
    box = Outbox(make_store(), 300)
    box.enqueue_many([item(Priority.CLIP, record_id="c1"), item(Priority.CLIP, record_id="c2")])
    box.next_batch(NOW, 10)  # both in flight
    drops = box.enqueue(item(Priority.STATUS, size=200, record_id="s"))
    assert [(d.record_id, d.reason) for d in drops] == [("s", DropReason.REFUSED)]


def test_outbox_rule7_purge_purpose_drops_pending_and_inflight(make_store: StoreFactory) -> None:
    box = Outbox(make_store(), 10_000)
    box.enqueue_many(
        [
            item(Priority.DIAGNOSTICS, record_id="d1", purpose=Purpose.DIAGNOSTICS),
            item(Priority.DIAGNOSTICS, record_id="d2", purpose=Purpose.DIAGNOSTICS),
            item(record_id="alarm"),
        ]
    )
    box.next_batch(NOW, 2)  # alarm and d1 in flight
    drops = box.purge_purpose(Purpose.DIAGNOSTICS)
    assert sorted(d.record_id for d in drops) == ["d1", "d2"]
    box.ack(["d1"])  # a late PUBACK for a purged item is ignored
    assert box.counters() == {"purged": 2}
    assert box.pending_count() == 1


def test_outbox_refused_by_broker_is_counted(make_store: StoreFactory) -> None:
    box = Outbox(make_store(), 10_000)
    box.enqueue(item(record_id="a"))
    box.next_batch(NOW, 1)
    drops = box.refused(["a"])
    assert [(d.record_id, d.reason) for d in drops] == [("a", DropReason.REFUSED_BY_BROKER)]
    assert box.pending_count() == 0


def test_outbox_enqueue_is_idempotent_by_record_id(make_store: StoreFactory) -> None:
    box = Outbox(make_store(), 10_000)
    box.enqueue(item(record_id="same"))
    box.enqueue(item(record_id="same"))
    assert box.pending_count() == 1


class OutboxMachine(RuleBasedStateMachine):
    """Every enqueued item is acked, recorded as dropped with a reason, or still stored."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(self._tmpdir())
        self.use_sqlite = False
        self.store: OutboxStore = InMemoryOutboxStore()
        self.box = Outbox(self.store, 2_000)
        self.enqueued: set[str] = set()
        self.acked: set[str] = set()
        self.dropped: set[str] = set()
        self.inflight: set[str] = set()
        self.now = NOW

    @staticmethod
    def _tmpdir() -> str:
        import tempfile

        return tempfile.mkdtemp(prefix="outbox-machine-")

    @rule(use=st.booleans())
    def switch_to_sqlite(self, use: bool) -> None:
        if use and not self.use_sqlite and not self.enqueued:
            self.use_sqlite = True
            self.store = SqliteOutboxStore(self.tmp / "o.sqlite3", KEY, synchronous="NORMAL")
            self.box = Outbox(self.store, 2_000)

    @rule(
        priority=st.sampled_from(list(Priority)), size=st.integers(60, 700), ttl=st.integers(1, 100)
    )
    def enqueue(self, priority: Priority, size: int, ttl: int) -> None:
        new = item(priority, size=size, expires_in=timedelta(seconds=ttl))
        self.enqueued.add(new.record_id)
        for drop in self.box.enqueue(new):
            self.dropped.add(drop.record_id)

    @rule(n=st.integers(1, 5))
    def send(self, n: int) -> None:
        waiting = sorted(
            (m for m in self.store.meta() if m.record_id not in self.inflight),
            key=lambda m: (m.priority, m.seq),
        )
        live = [m.record_id for m in waiting if m.expires_at is None or m.expires_at > self.now]
        batch, drops = self.box.next_batch(self.now, n)
        # rule 3, and never an item twice on one connection
        assert [i.record_id for i in batch] == live[: len(batch)]
        assert len(batch) == min(n, len(live)) or drops
        self.inflight.update(i.record_id for i in batch)
        self.dropped.update(d.record_id for d in drops)

    @precondition(lambda self: bool(self.inflight))
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        record_id = data.draw(st.sampled_from(sorted(self.inflight)))
        self.inflight.discard(record_id)
        self.box.ack([record_id])
        if record_id not in self.dropped:
            self.acked.add(record_id)

    @rule()
    def lose_connection(self) -> None:
        self.box.requeue_inflight()
        self.inflight.clear()

    @precondition(lambda self: self.use_sqlite)
    @rule()
    def restart(self) -> None:
        self.box.close()
        self.store = SqliteOutboxStore(self.tmp / "o.sqlite3", KEY, synchronous="NORMAL")
        self.box = Outbox(self.store, 2_000)
        self.inflight.clear()

    @rule(seconds=st.integers(1, 60))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)
        self.dropped.update(d.record_id for d in self.box.expire(self.now))

    @invariant()
    def nothing_is_lost(self) -> None:
        stored = {m.record_id for m in self.store.meta()}
        assert self.enqueued == self.acked | self.dropped | stored
        assert self.box.store.total_bytes() <= 2_000

    def teardown(self) -> None:
        import shutil

        self.box.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


TestOutboxMachine = OutboxMachine.TestCase
TestOutboxMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
