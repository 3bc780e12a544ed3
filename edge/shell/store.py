"""Shell: the outbox's durable store: SQLite in WAL mode, payloads encrypted at rest.

Format (``PRAGMA user_version = 3``; version 1 and 2 files are upgraded in place)::

    items(seq INTEGER PRIMARY KEY AUTOINCREMENT, record_id TEXT UNIQUE, purpose TEXT,
          priority INTEGER, created_at TEXT, expires_at REAL NULL (Unix time),
          size INTEGER, inflight INTEGER (always 0 since version 2), qos INTEGER,
          retain INTEGER, policy_version TEXT, clause TEXT, sealed BLOB,
          sealed_topic BLOB (since version 3))
    counters(name TEXT PRIMARY KEY, value INTEGER)
    totals(id 0, bytes INTEGER, items INTEGER)   kept by triggers on items

``sealed`` is AES-256-GCM (``cryptography``) of ``len(topic) || topic || payload`` with a
random 96-bit nonce prepended and the ``record_id`` as associated data, so a row cannot
be swapped with another or edited without detection. What the rules need for ordering,
eviction, expiry and purges (priority, sequence, times, purpose, size) stays in clear, and
the topic, which their audit records name, is sealed a second time on its own
(``sealed_topic``, associated data ``record_id + "/topic"``), so those rules never read or
decrypt a payload: with 1,000 queued 64 KiB clips, choosing one victim by decrypting
every row took 0.18 s per enqueue; from a covering index it takes 4 ms
(``benchmarks/outbox_full.py``). Snapshots sit on an SD card
that can be pulled: without the key file (mode 0600, elsewhere in the state folder, or on
secure storage) the queue is unreadable.

A commit that only deletes acknowledged items runs at ``synchronous=NORMAL`` (no fsync):
a power cut may undo it, and the item is then sent again (a duplicate by record id, which
at-least-once allows), never lost. That halves the fsyncs of a busy agent, and the wear
of its SD card. Items queued by this process keep their clear payload in a small cache
(``RECENT_BYTES``) until they are first sent, so the send path does not read back and
decrypt what it has just written; after a restart or a requeue, items come from disk.

"In flight" lives in memory only: it means "handed to the broker on this connection",
which a restart or a lost connection undoes anyway (rule 2), so marking it costs no
transaction and no fsync.

Durability: one transaction per ``Change`` that changes rows; ``synchronous=FULL`` by
default, so a commit survives a power cut (the WAL is fsynced at each commit); ``NORMAL``
is faster and still safe against a process crash (kill -9), losing at most the last
commits on power loss.
A store that cannot be opened or decrypted raises ``StoreError``; ``open_or_quarantine``
renames such a file aside (never deletes it) and starts an empty one.
"""

from __future__ import annotations

import os
import sqlite3
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edge.errors import StoreError, StoreFullError, StoreKeyError
from edge.model import Priority, Purpose
from edge.outbox import Change, ItemMeta, OutboxItem

SCHEMA_VERSION = 3
WAL_CHECKPOINT_PAGES = 256
WAL_SIZE_LIMIT_BYTES = 1024 * 1024
NONCE_BYTES = 12
OUTBOX_FILE = "outbox.sqlite3"  # in the device's state folder
RECENT_BYTES = 1024 * 1024  # clear payloads kept for the first send (module docstring)
RECENT_ITEM_BYTES = 64 * 1024  # larger items (snapshots, clips) are read back from disk

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id TEXT NOT NULL UNIQUE,
    purpose TEXT NOT NULL,
    priority INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    expires_at REAL,
    size INTEGER NOT NULL,
    inflight INTEGER NOT NULL DEFAULT 0,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    policy_version TEXT NOT NULL,
    clause TEXT NOT NULL,
    sealed BLOB NOT NULL,
    sealed_topic BLOB
);
DROP INDEX IF EXISTS items_order;
DROP INDEX IF EXISTS items_priority;
-- Covering: the rules' queries (eviction, expiry, purge, meta) read only this index. A
-- column stored after a 64 KiB payload is reached through its overflow pages (23 ms per
-- eviction choice with 1,000 queued clips, against 1 ms from the index).
CREATE INDEX IF NOT EXISTS items_rules ON items(
    priority, seq, record_id, purpose, size, expires_at, policy_version, clause, sealed_topic
);
DROP INDEX IF EXISTS items_expiry;
CREATE INDEX IF NOT EXISTS items_expiring ON items(
    expires_at, priority, seq, record_id, purpose, size, policy_version, clause, sealed_topic
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 0), bytes INTEGER NOT NULL, items INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals SELECT 0, COALESCE(SUM(size), 0), COUNT(*) FROM items;
CREATE TRIGGER IF NOT EXISTS items_added AFTER INSERT ON items BEGIN
    UPDATE totals SET bytes = bytes + NEW.size, items = items + 1 WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS items_removed AFTER DELETE ON items BEGIN
    UPDATE totals SET bytes = bytes - OLD.size, items = items - 1 WHERE id = 0;
END;
"""

_META_COLUMNS = (
    "record_id, purpose, priority, seq, size, expires_at, policy_version, clause, sealed_topic"
)


def _ts(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def _from_ts(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


class SqliteOutboxStore:
    """``OutboxStore`` on SQLite. Not thread-safe: the agent's main loop owns it."""

    def __init__(self, path: Path, key: bytes, synchronous: str = "FULL") -> None:
        if len(key) != 32:
            raise StoreError("outbox key must be 32 bytes (AES-256)")
        if synchronous not in {"FULL", "NORMAL"}:
            raise StoreError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
        self.path = path
        self._aead = AESGCM(key)
        self._inflight: set[str] = set()
        # Items are handed out in (priority, seq) order, so within one connection every
        # item of priority p with seq <= _sent_upto[p] is in flight or gone: pending()
        # lets SQLite skip them instead of reading them back (cleared on requeue).
        self._sent_upto: dict[int, int] = {}
        self._served: dict[str, tuple[int, int]] = {}
        self._unplaced: set[str] = set()  # in flight without having been served: not skipped
        self._recent: dict[str, tuple[str, bytes]] = {}
        self._recent_bytes = 0
        self._synchronous = synchronous
        self._lazy = False  # the connection is at synchronous=NORMAL for an ack commit
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            # Keep the WAL small on a small card: checkpoint every 1 MiB of pages and
            # shrink the file back to 1 MiB after each checkpoint, so the log cannot
            # quietly take the last free space that a delete (an acknowledgement) needs.
            self._db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            self._db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            if version not in (0, 1, 2, SCHEMA_VERSION):
                raise StoreError(
                    f"{path}: outbox schema version {version}, expected {SCHEMA_VERSION}"
                )
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(items)")}
            if columns and "sealed_topic" not in columns:  # a version 1 or 2 file
                self._db.execute("ALTER TABLE items ADD COLUMN sealed_topic BLOB")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            check = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise StoreError(f"{path}: integrity check failed: {check}")
            self._verify_key()
            self._fill_topics()  # rows of a version 1 or 2 file: once, at the upgrade
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{path}: not a readable outbox store: {err}") from err
        os.chmod(path, 0o600)

    def _verify_key(self) -> None:
        row = self._db.execute("SELECT record_id, sealed FROM items LIMIT 1").fetchone()
        if row is not None:
            self._open(row[0], row[1])

    def _fill_topics(self) -> None:
        rows = self._db.execute(
            "SELECT record_id, sealed FROM items WHERE sealed_topic IS NULL"
        ).fetchall()
        if rows:
            self._db.executemany(
                "UPDATE items SET sealed_topic = ? WHERE record_id = ?",
                [
                    (self._seal_topic(record_id, self._open(record_id, sealed)[0]), record_id)
                    for record_id, sealed in rows
                ],
            )

    # -- encryption --------------------------------------------------------------

    def _seal(self, item: OutboxItem) -> bytes:
        topic = item.topic.encode()
        nonce = os.urandom(NONCE_BYTES)
        plain = struct.pack(">H", len(topic)) + topic + item.payload
        return nonce + self._aead.encrypt(nonce, plain, item.record_id.encode())

    def _seal_topic(self, record_id: str, topic: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, topic.encode(), f"{record_id}/topic".encode())

    def _open_topic(self, record_id: str, sealed_topic: bytes) -> str:
        try:
            plain = self._aead.decrypt(
                sealed_topic[:NONCE_BYTES],
                sealed_topic[NONCE_BYTES:],
                f"{record_id}/topic".encode(),
            )
        except InvalidTag as err:
            raise StoreKeyError(
                f"{self.path}: a queued item's topic does not decrypt (wrong key file, or the "
                "store was tampered with)"
            ) from err
        return plain.decode()

    def _open(self, record_id: str, sealed: bytes) -> tuple[str, bytes]:
        try:
            plain = self._aead.decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], record_id.encode()
            )
        except InvalidTag as err:
            raise StoreKeyError(
                f"{self.path}: a queued item does not decrypt (wrong key file, or the store was "
                "tampered with)"
            ) from err
        (length,) = struct.unpack(">H", plain[:2])
        return plain[2 : 2 + length].decode(), plain[2 + length :]

    # -- the protocol ---------------------------------------------------------------

    def commit(self, change: Change) -> None:
        """One transaction. On a full disk, checkpoint and truncate the WAL (it holds
        pages of earlier and of failed transactions) and try once more."""
        try:
            self._commit(change)
        except StoreFullError:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as err:
                raise StoreFullError(f"{self.path}: the disk is full: {err}") from err
            self._commit(change)

    def _commit(self, change: Change) -> None:
        if change.requeue_all:
            self._inflight.clear()
            self._sent_upto.clear()
            self._unplaced.clear()
        if not (change.delete or change.insert or change.count):
            self._mark_inflight(change.mark_inflight)  # memory only (module docstring)
            return
        db = self._db
        try:
            lazy = not change.durable and not change.insert and not change.count
            if lazy != self._lazy and self._synchronous == "FULL":
                db.execute(f"PRAGMA synchronous={'NORMAL' if lazy else 'FULL'}")
                self._lazy = lazy
            db.execute("BEGIN IMMEDIATE")
            if change.delete:
                db.executemany(
                    "DELETE FROM items WHERE record_id = ?", [(r,) for r in change.delete]
                )
            if change.insert:
                db.executemany(
                    "INSERT OR IGNORE INTO items (record_id, purpose, priority, created_at, "
                    "expires_at, size, qos, retain, policy_version, clause, sealed, sealed_topic) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            i.record_id,
                            i.purpose.value,
                            int(i.priority),
                            i.created_at.isoformat(),
                            _ts(i.expires_at),
                            i.size,
                            i.qos,
                            int(i.retain),
                            i.policy_version,
                            i.clause,
                            self._seal(i),
                            self._seal_topic(i.record_id, i.topic),
                        )
                        for i in change.insert
                    ],
                )
            if change.count:
                db.executemany(
                    "INSERT INTO counters (name, value) VALUES (?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                    list(change.count.items()),
                )
            db.execute("COMMIT")
        except sqlite3.Error as err:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if "full" in str(err).lower():
                raise StoreFullError(f"{self.path}: the disk is full: {err}") from err
            raise StoreError(f"{self.path}: cannot write the outbox: {err}") from err
        self._inflight.difference_update(change.delete)
        self._unplaced.difference_update(change.delete)
        self._mark_inflight(change.mark_inflight)
        for record_id in change.delete:
            self._forget_recent(record_id)
        for item in change.insert:
            self._remember_recent(item)

    def _mark_inflight(self, record_ids: tuple[str, ...]) -> None:
        self._inflight.update(record_ids)
        served, upto = self._served, self._sent_upto
        for record_id in record_ids:
            position = served.get(record_id)
            if position is None:
                self._unplaced.add(record_id)
            elif position[1] > upto.get(position[0], 0):
                upto[position[0]] = position[1]
        served.clear()

    def _remember_recent(self, item: OutboxItem) -> None:
        size = item.size
        if size > RECENT_ITEM_BYTES or self._recent_bytes + size > RECENT_BYTES:
            return
        if item.record_id not in self._recent:
            self._recent[item.record_id] = (item.topic, item.payload)
            self._recent_bytes += size

    def _forget_recent(self, record_id: str) -> tuple[str, bytes] | None:
        found = self._recent.pop(record_id, None)
        if found is not None:
            self._recent_bytes -= len(found[0]) + len(found[1])
        return found

    def pending(self, limit: int) -> list[OutboxItem]:
        upto = sorted(self._sent_upto.items())
        cases = " ".join("WHEN ? THEN ?" for _ in upto)
        where = f"WHERE seq > CASE priority {cases} ELSE 0 END" if upto else ""
        sql = (
            "SELECT record_id, purpose, priority, created_at, expires_at, qos, retain, "  # noqa: S608 - only placeholders are formatted in
            f"policy_version, clause, seq, sealed FROM items {where} ORDER BY priority, seq LIMIT ?"
        )
        rows = self._query(sql, (*(n for pair in upto for n in pair), limit + len(self._unplaced)))
        inflight = self._inflight
        items: list[OutboxItem] = []
        for (
            record_id,
            purpose,
            priority,
            created,
            expires,
            qos,
            retain,
            version,
            clause,
            seq,
            sealed,
        ) in rows:
            if record_id in inflight:
                continue  # in _unplaced: marked without being served first
            if len(items) == limit:
                break
            recent = self._forget_recent(record_id)
            topic, payload = recent if recent is not None else self._open(record_id, sealed)
            self._served[record_id] = (priority, seq)
            items.append(
                OutboxItem(
                    record_id,
                    topic,
                    payload,
                    qos,
                    bool(retain),
                    Purpose(purpose),
                    Priority(priority),
                    datetime.fromisoformat(created),
                    _from_ts(expires),
                    version,
                    clause,
                    seq,
                )
            )
        return items

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        try:
            return list(self._db.execute(sql, args))
        except sqlite3.Error as err:
            raise StoreError(f"{self.path}: cannot read the outbox: {err}") from err

    def _metas(
        self, where: str, args: tuple[object, ...] = (), pending_only: bool = False
    ) -> list[ItemMeta]:
        rows = self._query(f"SELECT {_META_COLUMNS} FROM items {where}", args)  # noqa: S608 - fixed SQL fragments
        metas = []
        for (
            record_id,
            purpose,
            priority,
            seq,
            size,
            expires,
            version,
            clause,
            sealed_topic,
        ) in rows:
            inflight = record_id in self._inflight
            if pending_only and inflight:
                continue
            metas.append(
                ItemMeta(
                    record_id,
                    self._open_topic(record_id, sealed_topic),
                    Purpose(purpose),
                    Priority(priority),
                    seq,
                    size,
                    inflight,
                    _from_ts(expires),
                    version,
                    clause,
                )
            )
        return metas

    def meta(self, record_ids: Iterable[str] | None = None) -> list[ItemMeta]:
        if record_ids is None:
            return self._metas("ORDER BY seq")
        wanted = list(record_ids)
        found: list[ItemMeta] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found += self._metas(f"WHERE record_id IN ({marks})", tuple(chunk))
        return found

    def expired(self, now: datetime) -> list[ItemMeta]:
        return self._metas(
            "WHERE expires_at IS NOT NULL AND expires_at <= ?",
            (now.timestamp(),),
            pending_only=True,
        )

    def eviction_candidates(self, below_priority: Priority) -> list[ItemMeta]:
        return self._metas(
            "WHERE priority > ? ORDER BY priority DESC, seq",
            (int(below_priority),),
            pending_only=True,
        )

    def of_purpose(self, purpose: Purpose) -> list[ItemMeta]:
        # The covering index, scanned, not the table: see _SCHEMA.
        return self._metas(
            "INDEXED BY items_rules WHERE purpose = ? ORDER BY seq", (purpose.value,)
        )

    def total_bytes(self) -> int:
        return int(self._query("SELECT bytes FROM totals WHERE id = 0")[0][0])

    def count(self) -> int:
        return int(self._query("SELECT items FROM totals WHERE id = 0")[0][0])

    def counters(self) -> dict[str, int]:
        return {str(n): int(v) for n, v in self._query("SELECT name, value FROM counters")}

    def checkpoint(self) -> bool:
        """Copy the WAL into the database and truncate it to nothing: on a nearly full
        disk, done while there is still room for the copy, so that stale page versions
        in the WAL do not take the space a delete (an acknowledgement) needs. False: it
        could not complete (no room, or busy); nothing is lost, the WAL stays."""
        try:
            busy = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        except sqlite3.Error:
            return False
        return int(busy) == 0

    def close(self) -> None:
        self._db.close()

    def disk_bytes(self) -> int:
        """Bytes of the database and its WAL on disk (for the benchmark)."""
        return _disk_bytes(self.path)


def quarantine(path: Path, now: datetime) -> Path:
    """Move an unreadable store (and its WAL) aside; never delete it."""
    target = path.with_name(f"{path.name}.corrupt-{now:%Y%m%dT%H%M%S}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            source.rename(Path(f"{target}{suffix}"))
    return target


def open_or_quarantine(
    path: Path, key: bytes, synchronous: str = "FULL"
) -> tuple[SqliteOutboxStore, Path | None]:
    """Open the store; if it is corrupt, quarantine it and open a fresh one.

    Returns the store and the quarantined path (None when nothing was wrong), so the
    caller logs, counts and audits the event.

    Raises:
        StoreKeyError: the key does not open it: the file is fine and stays where it is
            (a wrong key is not corruption; quarantining would hide every queued alarm).
    """
    try:
        return SqliteOutboxStore(path, key, synchronous), None
    except StoreKeyError:
        raise
    except StoreError:
        moved = quarantine(path, datetime.now(UTC))
        return SqliteOutboxStore(path, key, synchronous), moved


@dataclass(frozen=True, slots=True)
class QueueGroup:
    """Queued items of one purpose and priority (clear metadata only, no payloads)."""

    purpose: str
    priority: str
    items: int
    bytes: int
    oldest: datetime
    next_expiry: datetime | None


@dataclass(frozen=True, slots=True)
class QueueSummary:
    path: Path
    groups: tuple[QueueGroup, ...]
    dropped: dict[str, int]
    disk_bytes: int

    @property
    def items(self) -> int:
        return sum(g.items for g in self.groups)

    @property
    def bytes(self) -> int:
        return sum(g.bytes for g in self.groups)


def queue_summary(path: Path) -> QueueSummary:
    """What waits in an outbox, read-only and without its key: the ordering metadata is in
    clear (module docstring), topics and payloads are not, and none is decrypted. Safe
    next to a running daemon (a WAL reader changes nothing).

    Raises:
        StoreError: no such file, or not an outbox store.
    """
    if not path.is_file():
        raise StoreError(f"no outbox store at {path}")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as err:
        raise StoreError(f"{path}: cannot open: {err}") from err
    try:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version not in (1, SCHEMA_VERSION):
            raise StoreError(f"{path}: not an outbox store (schema version {version})")
        rows = db.execute(
            "SELECT purpose, priority, COUNT(*), SUM(size), MIN(created_at), MIN(expires_at) "
            "FROM items GROUP BY purpose, priority ORDER BY priority, purpose"
        ).fetchall()
        dropped = {str(n): int(v) for n, v in db.execute("SELECT name, value FROM counters")}
    except sqlite3.Error as err:
        raise StoreError(f"{path}: not a readable outbox store: {err}") from err
    finally:
        db.close()
    groups = tuple(
        QueueGroup(
            str(purpose),
            Priority(priority).name.lower(),
            int(count),
            int(size),
            datetime.fromisoformat(oldest),
            _from_ts(expiry),
        )
        for purpose, priority, count, size, oldest, expiry in rows
    )
    return QueueSummary(path, groups, dropped, _disk_bytes(path))


def _disk_bytes(path: Path) -> int:
    """The database file with its WAL and shared-memory index."""
    files = (Path(f"{path}{suffix}") for suffix in ("", "-wal", "-shm"))
    return sum(f.stat().st_size for f in files if f.exists())
