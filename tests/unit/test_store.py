"""The SQLite outbox store: encrypted at rest, crash-safe, corrupt stores quarantined."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.errors import StoreError
from edge.model import Priority, Purpose
from edge.outbox import Change, Outbox, OutboxItem
from edge.shell.crypto import load_or_create_key
from edge.shell.store import SqliteOutboxStore, open_or_quarantine

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SECRET = b"PLATE-WX4821K-snapshot-bytes"


def _item(record_id: str = "r1") -> OutboxItem:
    return OutboxItem(
        record_id,
        "devices/SN0001/alarm/snapshot",
        SECRET * 10,
        1,
        False,
        Purpose.NOTIFICATION,
        Priority.SNAPSHOT,
        NOW,
        None,
        "en-2023-01-10",
        "en-2023-01-10#row11",
    )


def _all_bytes(path: Path) -> bytes:
    return b"".join(
        Path(f"{path}{s}").read_bytes() for s in ("", "-wal") if Path(f"{path}{s}").exists()
    )


def test_store_payload_and_topic_are_encrypted_at_rest(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    store = SqliteOutboxStore(path, os.urandom(32))
    Outbox(store, 1 << 20).enqueue(_item())
    on_disk = _all_bytes(path)
    assert SECRET not in on_disk
    assert b"alarm/snapshot" not in on_disk
    assert b"en-2023-01-10#row11" in on_disk  # metadata for ordering and audit stays in clear
    assert store.pending(1)[0].payload == SECRET * 10
    store.close()
    assert path.stat().st_mode & 0o777 == 0o600


def test_store_wrong_key_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    store = SqliteOutboxStore(path, os.urandom(32))
    Outbox(store, 1 << 20).enqueue(_item())
    store.close()
    with pytest.raises(StoreError, match="does not decrypt"):
        SqliteOutboxStore(path, os.urandom(32))


def test_store_garbage_file_is_quarantined_not_emptied(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    store, moved = open_or_quarantine(path, os.urandom(32))
    assert moved is not None
    assert moved.read_bytes().startswith(b"this is not a database")
    assert store.count() == 0
    store.close()


def test_store_tampered_row_is_detected(tmp_path: Path) -> None:
    import sqlite3

    key = os.urandom(32)
    path = tmp_path / "outbox.sqlite3"
    store = SqliteOutboxStore(path, key)
    Outbox(store, 1 << 20).enqueue_many([_item("a"), _item("b")])
    store.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE items SET record_id = 'x' WHERE record_id = 'a'")  # swap identities
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="does not decrypt"):
        SqliteOutboxStore(path, key).pending(10)


def test_store_counters_persist(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    box = Outbox(SqliteOutboxStore(path, os.urandom(32)), 1 << 20)
    box.count("refused_by_broker")
    box.count("refused_by_broker")
    key_path = tmp_path / "k"
    del key_path
    counters = box.counters()
    box.close()
    assert counters == {"refused_by_broker": 2}


def test_key_is_created_0600_and_refused_when_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "state" / "outbox.key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert load_or_create_key(path) == key
    assert path.stat().st_mode & 0o777 == 0o600
    os.chmod(path, 0o644)
    with pytest.raises(StoreError, match="chmod 600"):
        load_or_create_key(path)
    os.chmod(path, 0o600)
    path.write_bytes(b"short")
    with pytest.raises(StoreError, match="32 bytes"):
        load_or_create_key(path)


def test_store_upgrades_a_version_1_file_and_keeps_its_totals(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    key = os.urandom(32)
    store = SqliteOutboxStore(path, key)
    Outbox(store, 1 << 20).enqueue_many([_item("a"), _item("b")])
    store.close()
    db = sqlite3.connect(path)  # make it look like a version 1 file: no totals, no triggers
    db.executescript(
        "DROP TRIGGER items_added; DROP TRIGGER items_removed; DROP TABLE totals;"
        "UPDATE items SET inflight = 1 WHERE record_id = 'a'; PRAGMA user_version = 1;"
    )
    db.close()
    store = SqliteOutboxStore(path, key)
    assert store.count() == 2
    assert store.total_bytes() == 2 * _item().size
    assert [i.record_id for i in store.pending(5)] == ["a", "b"]  # in flight is memory only
    Outbox(store, 1 << 20).ack(["a"])
    assert (store.count(), store.total_bytes()) == (1, _item().size)
    store.close()


def test_store_marking_in_flight_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    store = SqliteOutboxStore(path, os.urandom(32))
    box = Outbox(store, 1 << 20)
    box.enqueue_many([_item("a"), _item("b")])
    before = Path(f"{path}-wal").stat().st_size
    batch, _ = box.next_batch(NOW, 1)
    assert [i.record_id for i in batch] == ["a"]
    assert Path(f"{path}-wal").stat().st_size == before
    assert [i.record_id for i in store.pending(5)] == ["b"]
    assert [m.inflight for m in store.meta(["a", "b"])] == [True, False]
    store.close()


def test_store_fsyncs_queued_items_but_not_acknowledgements(tmp_path: Path) -> None:
    """An item must be on disk before it is sent; its delete after PUBACK may be lost to
    a power cut (it is then sent again), so that commit skips the fsync."""
    store = SqliteOutboxStore(tmp_path / "outbox.sqlite3", os.urandom(32))
    box = Outbox(store, 1 << 20)

    def level() -> int:
        return int(store._db.execute("PRAGMA synchronous").fetchone()[0])

    box.enqueue_many([_item("a"), _item("b")])
    assert level() == 2  # FULL
    batch, _ = box.next_batch(NOW, 2)
    box.ack([batch[0].record_id])
    assert level() == 1  # NORMAL
    assert box.purge_purpose(Purpose.NOTIFICATION)[0].record_id == "b"
    assert level() == 2  # a purge must not come back after a power cut
    store.close()


def test_store_sends_from_memory_what_it_just_queued_and_from_disk_after_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite3"
    key = os.urandom(32)
    store = SqliteOutboxStore(path, key)
    Outbox(store, 1 << 20).enqueue_many([_item("a")])
    first = store.pending(1)
    store.close()
    reopened = SqliteOutboxStore(path, key)
    again = reopened.pending(1)
    assert (first[0].topic, first[0].payload) == (again[0].topic, again[0].payload)
    assert first[0].payload == SECRET * 10
    reopened.close()


def test_store_pending_skips_items_marked_in_flight_out_of_order(tmp_path: Path) -> None:
    """The send query skips what it handed out itself; an item marked in flight some
    other way must still never come back, and must not hide the items after it."""
    store = SqliteOutboxStore(tmp_path / "outbox.sqlite3", os.urandom(32))
    box = Outbox(store, 1 << 20)
    box.enqueue_many([_item("a"), _item("b"), _item("c")])
    store.commit(Change(mark_inflight=("a",)))
    assert [i.record_id for i in store.pending(1)] == ["b"]
    batch, _ = box.next_batch(NOW, 1)
    assert [i.record_id for i in batch] == ["b"]
    assert [i.record_id for i in store.pending(5)] == ["c"]
    box.requeue_inflight()
    assert [i.record_id for i in store.pending(5)] == ["a", "b", "c"]
    store.close()


def _clip(record_id: str, priority: Priority, purpose: Purpose) -> OutboxItem:
    return OutboxItem(
        record_id,
        f"devices/SN0001/{purpose.value}",
        os.urandom(64 * 1024),
        1,
        False,
        purpose,
        priority,
        NOW,
        None,
        "en-2023-01-10",
        "en-2023-01-10#row12",
    )


def test_eviction_and_purge_never_decrypt_a_payload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rules that only need metadata must not read queued payloads back: with 1,000
    queued clips, decrypting them all to evict one cost 0.2-0.4 s per enqueue."""
    store = SqliteOutboxStore(tmp_path / "outbox.sqlite3", os.urandom(32))
    clips = [_clip(f"c{i}", Priority.CLIP, Purpose.CLOUD_STORAGE) for i in range(20)]
    box = Outbox(store, sum(c.size for c in clips))
    box.enqueue_many(clips)

    def no_payloads(record_id: str, sealed: bytes) -> tuple[str, bytes]:
        raise AssertionError(f"payload of {record_id} decrypted")

    monkeypatch.setattr(store, "_open", no_payloads)
    drops = box.enqueue(_clip("alarm", Priority.SNAPSHOT, Purpose.NOTIFICATION))
    assert [(d.record_id, d.topic, d.reason.value) for d in drops] == [
        ("c0", "devices/SN0001/cloud_storage", "overflow")
    ]
    purged = box.purge_purpose(Purpose.CLOUD_STORAGE)
    assert len(purged) == 19
    assert {d.topic for d in purged} == {"devices/SN0001/cloud_storage"}
    assert [m.topic for m in store.meta(["alarm"])] == ["devices/SN0001/notification"]
    store.close()


def test_store_upgrades_a_version_2_file_and_seals_its_topics(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    key = os.urandom(32)
    store = SqliteOutboxStore(path, key)
    Outbox(store, 1 << 20).enqueue_many([_item("a"), _item("b")])
    store.close()
    db = sqlite3.connect(path)  # make it look like a version 2 file: no sealed topics
    db.executescript(
        "DROP INDEX items_rules; DROP INDEX items_expiring;"
        "ALTER TABLE items DROP COLUMN sealed_topic; PRAGMA user_version = 2;"
    )
    db.close()
    store = SqliteOutboxStore(path, key)
    assert [m.topic for m in store.meta(["a", "b"])] == ["devices/SN0001/alarm/snapshot"] * 2
    assert b"alarm/snapshot" not in _all_bytes(path)
    assert [i.payload for i in store.pending(5)] == [SECRET * 10] * 2
    store.close()
