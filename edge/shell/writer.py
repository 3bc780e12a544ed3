"""Shell: what a batch decided to queue, made durable at the batch's commit.

New releases and PUBACKs gather here while the agent handles a batch; ``commit`` writes
them to the outbox in one transaction (the acknowledged items are deleted in the same
one), and records QUEUED only once an item is durable, so the trail never claims an item
that a crash before this commit lost. A full disk does not stop the agent: what could
not be written stays in memory (at most ``MAX_UNSTORED``, the least important dropped
first) and is retried at the next commit. The disk budget keeps the queue out of the
disk's last MiB (or tenth), where SQLite needs room to delete what was sent.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from edge import produce
from edge.audit import AuditEvent
from edge.errors import StoreFullError
from edge.model import Count, Purpose
from edge.outbox import Dropped, Outbox, OutboxItem
from edge.release import Release
from edge.session import PublishAcked
from edge.shell.recorder import Recorder

logger = logging.getLogger(__name__)

MAX_UNSTORED = 1000  # items held in memory while the disk is full
DISK_RESERVE_BYTES = 1024 * 1024  # never queue into the disk's last MiB or 10 % (budget)


class OutboxWriter:
    """The batch's new items and acknowledgements, until ``commit`` makes them durable."""

    def __init__(
        self,
        outbox: Outbox,
        recorder: Recorder,
        counters: Counter[str],
        state_dir: Path,
        max_queue_bytes: int,
        confirmed: Callable[[], bool],
    ) -> None:
        """``confirmed``: whether a PUBACK means the broker took the message (MQTT 5),
        or only that it was received (3.1.1: recorded as unconfirmed)."""
        self.outbox = outbox
        self._recorder = recorder
        self._counters = counters
        self._state_dir = state_dir
        self._max_queue_bytes = max_queue_bytes
        self._confirmed = confirmed
        self.to_queue: list[Release] = []
        self.acked: list[tuple[OutboxItem, PublishAcked]] = []
        self._notes: dict[str, dict[str, object]] = {}  # audit fields, written once stored
        self.stored: list[Release] = []  # what the last commit made durable

    @property
    def idle(self) -> bool:
        return not self.to_queue and not self.acked

    def add(self, item: Release, **notes: object) -> None:
        """Queue ``item`` at the next commit; ``notes`` go into its QUEUED record."""
        self.to_queue.append(item)
        if notes:
            self._notes[item.record_id] = notes

    def ack(self, item: OutboxItem, event: PublishAcked) -> None:
        self.acked.append((item, event))

    def commit(self) -> None:
        """Store new items and acknowledgements; a full disk is counted, not raised. On
        a tight disk the WAL is folded back into the database after each commit."""
        self.stored = []
        free, reserve = self._disk()
        try:
            if self.to_queue:  # the budget only bounds new items
                self.outbox.max_queue_bytes = self.budget(free, reserve)
            self._store_new_items()
            self._store_acks()
        except StoreFullError as err:
            self._counters[Count.STORE_FULL] += 1
            logger.error("outbox: %s; %d item(s) wait in memory", err, len(self.to_queue))
            self._bound_unstored()
        if free is not None and free < 2 * reserve:
            self.outbox.store.checkpoint()

    def _disk(self) -> tuple[int | None, int]:
        """Free bytes of the state folder's disk (None: unknown) and the reserve kept out
        of the queue's reach: ``DISK_RESERVE_BYTES``, or a tenth of a small disk."""
        try:
            stat = os.statvfs(self._state_dir)
        except OSError:
            return None, DISK_RESERVE_BYTES
        reserve = min(DISK_RESERVE_BYTES, stat.f_blocks * stat.f_frsize // 10)
        return stat.f_bavail * stat.f_frsize, reserve

    def budget(self, free: int | None, reserve: int) -> int:
        """The outbox may use ``max_queue_bytes``, but never the disk's reserve: SQLite
        needs room in its WAL to mark items as sent and to delete them once acknowledged,
        and a disk filled by the queue itself could never drain. A new byte may take two
        on disk until the next checkpoint (its WAL page, then its copy in the database),
        so only half the free space above the reserve is offered. Beyond the budget the
        overflow rule applies (lowest priority goes first)."""
        if free is None:
            return self._max_queue_bytes
        room = self.outbox.store.total_bytes() + max(0, free - reserve) // 2
        return max(1, min(self._max_queue_bytes, room))

    def purge_unstored(self, purpose: Purpose, why: str) -> None:
        """Items of ``purpose`` decided in this batch but not yet stored are purged too:
        counted and audited like the stored ones."""
        keep: list[Release] = []
        for item in self.to_queue:
            if item.purpose is purpose:
                self._notes.pop(item.record_id, None)
                self._counters[Count.DROPPED_PURGED] += 1
                self._recorder.message(
                    AuditEvent.PURGED, item, detail=f"purged before storing: {why}"
                )
            else:
                keep.append(item)
        self.to_queue = keep

    def _store_new_items(self) -> None:
        if not self.to_queue:
            return
        releases = self.to_queue
        acked = self.acked  # deleted in the same transaction when the batch fits
        acks_stored = False
        try:
            drops = self.outbox.enqueue_many(
                [produce.outbox_item(r) for r in releases],
                acked=[item.record_id for item, _ in acked],
            )
        except StoreFullError:
            # The batch does not fit: store what does, most important first; the rest
            # waits in memory for the next commit.
            releases, drops = self._store_what_fits(releases)
            if not releases:
                raise
        else:
            self.to_queue = []
            self.acked = []
            acks_stored = True
        notes = self._notes
        self._notes = {
            r.record_id: notes[r.record_id] for r in self.to_queue if r.record_id in notes
        }
        refused = {d.record_id for d in drops}
        self.stored = [r for r in releases if r.record_id not in refused]
        for queued in self.stored:
            self._recorder.message(AuditEvent.QUEUED, queued, **notes.get(queued.record_id, {}))
        self._recorder.drops(drops)
        if acks_stored:
            self._record_acks(acked)

    def _store_what_fits(self, releases: list[Release]) -> tuple[list[Release], list[Dropped]]:
        stored: list[Release] = []
        drops: list[Dropped] = []
        waiting: list[Release] = []
        for item in sorted(releases, key=lambda r: (r.priority, r.created_at)):
            if waiting:
                waiting.append(item)
                continue
            try:
                drops += self.outbox.enqueue_many([produce.outbox_item(item)])
                stored.append(item)
            except StoreFullError:
                waiting.append(item)
        self.to_queue = waiting
        return stored, drops

    def _store_acks(self) -> None:
        if not self.acked:
            return
        acked = self.acked
        self.outbox.ack([item.record_id for item, _ in acked])
        self.acked = []
        self._record_acks(acked)

    def _record_acks(self, acked: list[tuple[OutboxItem, PublishAcked]]) -> None:
        event = AuditEvent.ACKED if self._confirmed() else AuditEvent.UNCONFIRMED
        for item, ack in acked:
            self._recorder.message(event, item, reason_code=ack.reason_code)

    def _bound_unstored(self) -> None:
        """Keep at most MAX_UNSTORED unwritten items: drop the lowest priority, newest first."""
        if len(self.to_queue) <= MAX_UNSTORED:
            return
        ranked = sorted(self.to_queue, key=lambda r: (r.priority, r.created_at))
        kept, lost = ranked[:MAX_UNSTORED], ranked[MAX_UNSTORED:]
        self.to_queue = kept
        for item in lost:
            self._notes.pop(item.record_id, None)
            self._counters[Count.DROPPED_DISK_FULL] += 1
            self._recorder.message(AuditEvent.DROPPED, item, detail="disk full: not stored")
