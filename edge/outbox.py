"""Pure: the outbox's rules, over a durable store it is given (``OutboxStore``).

Theory of operation. Every message the gate allowed is an ``OutboxItem``. Its life:
pending -> in flight (handed to the transport) -> deleted on PUBACK; or dropped
(expired, overflow, purged) with a reason. The outbox decides; the store makes each
decision durable as ONE transaction (a ``Change``), so a crash leaves the state before or
after it, never between.

Rules:
1. An item is deleted only after its PUBACK (``ack``).
2. In-flight items return to pending on connection loss (``requeue_inflight``) and when
   the store is opened again after a restart; the same ``record_id`` is sent again, so a
   consumer may see a duplicate (at least once), never a gap.
3. Send order: priority (status > alarm events > snapshots > clips > diagnostics), then
   first in, first out.
4. An item past ``expires_at`` is dropped, never sent late: checked when a batch is taken
   and by the periodic ``expire`` sweep.
5. The queue is bounded by bytes. A new item that does not fit evicts pending items of
   lower priority, lowest priority and oldest first, never an in-flight item and never
   one of higher or equal priority; if that cannot make room, the new item is refused.
6. Every drop is counted by reason (persisted with the queue) and returned as a
   ``Dropped`` value so the caller can audit it. Nothing leaves the queue silently.
7. ``purge_purpose`` drops every item of a purpose, pending or in flight (consent
   withdrawn): a late PUBACK for a purged item is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from edge.model import Priority, Purpose


class DropReason(StrEnum):
    EXPIRED = "expired"
    OVERFLOW = "overflow"
    PURGED = "purged"
    REFUSED = "refused"  # the new item itself did not fit
    REFUSED_BY_BROKER = "refused_by_broker"
    DENIED_AT_SEND = "denied_at_send"  # failed a send-time check (rule 5): never sent


@dataclass(frozen=True, slots=True)
class OutboxItem:
    record_id: str
    topic: str
    payload: bytes = field(repr=False)
    qos: int
    retain: bool
    purpose: Purpose
    priority: Priority
    created_at: datetime
    expires_at: datetime | None
    policy_version: str
    clause: str
    seq: int = 0  # assigned by the store: FIFO order within a priority

    @property
    def size(self) -> int:
        return len(self.payload) + len(self.topic)


@dataclass(frozen=True, slots=True)
class ItemMeta:
    """What the rules need to know of a stored item, without its (encrypted) payload."""

    record_id: str
    topic: str
    purpose: Purpose
    priority: Priority
    seq: int
    size: int
    inflight: bool
    expires_at: datetime | None
    policy_version: str
    clause: str


@dataclass(frozen=True, slots=True)
class Dropped:
    record_id: str
    topic: str
    purpose: Purpose
    size: int
    reason: DropReason
    policy_version: str
    clause: str


@dataclass(frozen=True, slots=True)
class Change:
    """One state change, committed by the store as one transaction."""

    insert: tuple[OutboxItem, ...] = ()
    delete: tuple[str, ...] = ()
    mark_inflight: tuple[str, ...] = ()
    requeue_all: bool = False
    count: Mapping[str, int] = field(default_factory=dict)
    # False only for PUBACKed deletes: losing one to a power cut means the item is sent
    # again (a duplicate by record id, which rule 2 allows), never lost, so the store may
    # skip its fsync. Purges and expiries are durable: a lost one would send late.
    durable: bool = True


class OutboxStore(Protocol):
    """A durable queue: queries, and ``commit`` of one ``Change`` per transaction."""

    def commit(self, change: Change) -> None: ...

    def pending(self, limit: int) -> list[OutboxItem]:
        """Up to ``limit`` items not in flight, in send order (rule 3), with payloads."""
        ...

    def meta(self, record_ids: Iterable[str] | None = None) -> list[ItemMeta]: ...

    def expired(self, now: datetime) -> list[ItemMeta]: ...

    def eviction_candidates(self, below_priority: Priority) -> list[ItemMeta]:
        """Pending items with priority value > ``below_priority``, lowest priority, oldest first."""
        ...

    def of_purpose(self, purpose: Purpose) -> list[ItemMeta]: ...

    def total_bytes(self) -> int: ...

    def count(self) -> int: ...

    def counters(self) -> dict[str, int]: ...

    def checkpoint(self) -> bool:
        """Fold the store's write-ahead log back in (a tight disk); False: not done."""
        ...

    def close(self) -> None: ...


def _dropped(meta: ItemMeta | OutboxItem, reason: DropReason) -> Dropped:
    return Dropped(
        meta.record_id,
        meta.topic,
        meta.purpose,
        meta.size,
        reason,
        meta.policy_version,
        meta.clause,
    )


def _counts(drops: Sequence[Dropped]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for drop in drops:
        counts[drop.reason.value] = counts.get(drop.reason.value, 0) + 1
    return counts


class Outbox:
    """The rules of the module docstring, applied to one store."""

    def __init__(self, store: OutboxStore, max_queue_bytes: int) -> None:
        if max_queue_bytes <= 0:
            raise ValueError("max_queue_bytes must be positive")
        self.store = store
        self.max_queue_bytes = max_queue_bytes
        store.commit(Change(requeue_all=True))  # rule 2: nothing is in flight after a restart

    def enqueue(self, item: OutboxItem) -> list[Dropped]:
        """Queue one item (rule 5 may evict others or refuse it). Returns what was dropped."""
        return self.enqueue_many([item])

    def enqueue_many(self, items: Sequence[OutboxItem], acked: Sequence[str] = ()) -> list[Dropped]:
        """Queue ``items``; ``acked`` (PUBACKed record ids, rule 1) are deleted in the same
        transaction, so a busy agent pays one commit per batch, not two."""
        drops: list[Dropped] = []
        accepted: list[OutboxItem] = []
        total = self.store.total_bytes()
        evicted: set[str] = set()
        for item in items:
            need = total + item.size - self.max_queue_bytes
            victims: list[ItemMeta] = []
            if need > 0:
                freed = 0
                for meta in self.store.eviction_candidates(item.priority):
                    if meta.record_id in evicted:
                        continue
                    victims.append(meta)
                    freed += meta.size
                    if freed >= need:
                        break
                if freed < need:
                    drops.append(_dropped(item, DropReason.REFUSED))
                    continue
            for meta in victims:
                evicted.add(meta.record_id)
                drops.append(_dropped(meta, DropReason.OVERFLOW))
                total -= meta.size
            accepted.append(item)
            total += item.size
        self.store.commit(
            Change(
                insert=tuple(accepted),
                delete=(*sorted(evicted), *acked),
                count=_counts(drops),
            )
        )
        return drops

    def next_batch(self, now: datetime, max_items: int) -> tuple[list[OutboxItem], list[Dropped]]:
        """Take up to ``max_items`` items to send now and mark them in flight (one commit).

        Expired items met on the way are dropped (rule 4).
        """
        if max_items <= 0:
            return [], []
        batch: list[OutboxItem] = []
        drops: list[Dropped] = []
        for item in self.store.pending(max_items):
            if item.expires_at is not None and item.expires_at <= now:
                drops.append(_dropped(item, DropReason.EXPIRED))
            else:
                batch.append(item)
        if batch or drops:
            self.store.commit(
                Change(
                    delete=tuple(d.record_id for d in drops),
                    mark_inflight=tuple(i.record_id for i in batch),
                    count=_counts(drops),
                )
            )
        return batch, drops

    def ack(self, record_ids: Sequence[str]) -> None:
        """PUBACKs arrived: delete those items (rule 1); unknown ids are ignored (rule 7)."""
        if record_ids:
            self.store.commit(Change(delete=tuple(record_ids), durable=False))

    def refused(self, record_ids: Sequence[str]) -> list[Dropped]:
        """The broker refused these (PUBACK reason >= 0x80): drop and count them."""
        return self.drop(record_ids, DropReason.REFUSED_BY_BROKER)

    def drop(self, record_ids: Sequence[str], reason: DropReason) -> list[Dropped]:
        """Delete these items for ``reason``, counted (in flight or not)."""
        drops = [_dropped(m, reason) for m in self.store.meta(record_ids)]
        self.store.commit(Change(delete=tuple(record_ids), count=_counts(drops)))
        return drops

    def requeue_inflight(self) -> None:
        """Connection lost: everything in flight is pending again (rule 2)."""
        self.store.commit(Change(requeue_all=True))

    def expire(self, now: datetime) -> list[Dropped]:
        """The periodic sweep of rule 4."""
        drops = [_dropped(m, DropReason.EXPIRED) for m in self.store.expired(now)]
        if drops:
            self.store.commit(
                Change(delete=tuple(d.record_id for d in drops), count=_counts(drops))
            )
        return drops

    def purge_purpose(self, purpose: Purpose) -> list[Dropped]:
        """Rule 7: consent withdrawn: nothing of this purpose will be sent."""
        drops = [_dropped(m, DropReason.PURGED) for m in self.store.of_purpose(purpose)]
        if drops:
            self.store.commit(
                Change(delete=tuple(d.record_id for d in drops), count=_counts(drops))
            )
        return drops

    def count(self, reason: str) -> None:
        self.store.commit(Change(count={reason: 1}))

    def counters(self) -> dict[str, int]:
        return self.store.counters()

    def pending_count(self) -> int:
        return self.store.count()

    def close(self) -> None:
        self.store.close()


class InMemoryOutboxStore:
    """The same protocol in memory: for unit tests and the in-process simulator."""

    def __init__(self) -> None:
        self._items: dict[str, OutboxItem] = {}
        self._inflight: set[str] = set()
        self._counters: dict[str, int] = {}
        self._seq = 0

    def commit(self, change: Change) -> None:
        if change.requeue_all:
            self._inflight.clear()
        for record_id in change.delete:
            self._items.pop(record_id, None)
            self._inflight.discard(record_id)
        for item in change.insert:
            if item.record_id in self._items:
                continue  # idempotent: the same record is queued once
            self._seq += 1
            self._items[item.record_id] = _with_seq(item, self._seq)
        self._inflight.update(r for r in change.mark_inflight if r in self._items)
        for name, value in change.count.items():
            self._counters[name] = self._counters.get(name, 0) + value

    def _meta(self, item: OutboxItem) -> ItemMeta:
        return ItemMeta(
            item.record_id,
            item.topic,
            item.purpose,
            item.priority,
            item.seq,
            item.size,
            item.record_id in self._inflight,
            item.expires_at,
            item.policy_version,
            item.clause,
        )

    def pending(self, limit: int) -> list[OutboxItem]:
        waiting = [i for i in self._items.values() if i.record_id not in self._inflight]
        return sorted(waiting, key=lambda i: (i.priority, i.seq))[:limit]

    def meta(self, record_ids: Iterable[str] | None = None) -> list[ItemMeta]:
        if record_ids is None:
            return [self._meta(i) for i in sorted(self._items.values(), key=lambda i: i.seq)]
        return [self._meta(self._items[r]) for r in record_ids if r in self._items]

    def expired(self, now: datetime) -> list[ItemMeta]:
        return [
            self._meta(i)
            for i in self._items.values()
            if i.expires_at is not None
            and i.expires_at <= now
            and i.record_id not in self._inflight
        ]

    def eviction_candidates(self, below_priority: Priority) -> list[ItemMeta]:
        found = [
            i
            for i in self._items.values()
            if i.priority > below_priority and i.record_id not in self._inflight
        ]
        return [self._meta(i) for i in sorted(found, key=lambda i: (-i.priority, i.seq))]

    def of_purpose(self, purpose: Purpose) -> list[ItemMeta]:
        return [self._meta(i) for i in self._items.values() if i.purpose is purpose]

    def total_bytes(self) -> int:
        return sum(i.size for i in self._items.values())

    def count(self) -> int:
        return len(self._items)

    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    def checkpoint(self) -> bool:
        """No log to fold back in memory."""
        return True

    def close(self) -> None:
        """Nothing to release."""


def _with_seq(item: OutboxItem, seq: int) -> OutboxItem:
    return OutboxItem(
        item.record_id,
        item.topic,
        item.payload,
        item.qos,
        item.retain,
        item.purpose,
        item.priority,
        item.created_at,
        item.expires_at,
        item.policy_version,
        item.clause,
        seq,
    )
