"""Shell: the audit trail on disk: append-only JSON Lines, one hash-chained record a line.

``append`` computes the next record from the last one (read back at open) and writes
its line; ``fsync`` happens on every record by default (``fsync_every=1``), or every N
records and at ``sync``/``close``. With ``fsync_every`` > 1 lines are gathered and
written by one ``write`` at the next ``sync`` (the agent syncs once per batch): nothing
is durable before the fsync anyway, and one system call per line was a tenth of the
agent's time per message. A torn last line (power cut in the middle of a write)
is reported by ``read_all``/``verify_file`` as a torn tail, never silently accepted.

Rotation (``segment_bytes``): at a sync, an active file past that size is renamed
``audit.<N>.jsonl`` (N counts up from 1) and a new ``audit.jsonl`` continues the same
chain. Over ``max_bytes`` in all, the oldest segment is deleted once all its records are
older than ``keep`` (the longest retention that needs them): a ``SEGMENT_DELETED`` record
is made durable first, then the file goes. A segment still needed is never deleted; the
trail stays over its cap and ``over_cap`` says so (counted by the agent).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from edge.audit import (
    AuditEvent,
    AuditRecord,
    Segment,
    SegmentInfo,
    TrailReport,
    VerifyResult,
    chain_line,
    deletion_detail,
    parse_record,
    segments_to_delete,
    verify_trail,
)
from edge.errors import StoreError
from edge.shell.seal_key import SealKey

MAX_GATHERED = 4096  # lines held before a write even without a sync


@dataclass(frozen=True, slots=True)
class ReadResult:
    records: list[AuditRecord]
    torn_tail: str  # the bytes of an incomplete last line, if any
    bad_line: int | None  # 1-based number of a malformed line, if any


def read_records(path: Path) -> ReadResult:
    """Every record of the file, and what could not be read."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ReadResult([], "", None)
    except OSError as err:
        raise StoreError(f"{path}: cannot read the audit trail: {err.strerror}") from err
    lines = data.split(b"\n")
    torn = lines.pop() if lines else b""  # text after the last newline: a torn write
    records: list[AuditRecord] = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(parse_record(line.decode("utf-8")))
        except (ValueError, UnicodeDecodeError):
            return ReadResult(records, torn.decode("utf-8", "replace"), number)
    return ReadResult(records, torn.decode("utf-8", "replace"), None)


_SEGMENT = re.compile(r"^(?P<stem>.+)\.(?P<number>\d{6})\.jsonl$")


def segment_paths(active: Path) -> list[tuple[int, Path]]:
    """The rotated segments of the trail whose active file is ``active``, oldest first."""
    found = []
    stem = active.name.removesuffix(".jsonl")
    try:
        names = os.listdir(active.parent)
    except FileNotFoundError:
        return []
    for name in names:
        match = _SEGMENT.match(name)
        if match and match["stem"] == stem:
            found.append((int(match["number"]), active.parent / name))
    return sorted(found)


def trail_path(path: Path) -> Path:
    """The active file of a trail given as that file or as its folder."""
    return path / "audit.jsonl" if path.is_dir() else path


def read_trail(path: Path) -> list[Segment]:
    """Every segment of the trail (``path``: the active file or its folder), the active
    file last, each with the damage found while reading it."""
    active = trail_path(path)
    rotated = segment_paths(active)
    files = [*rotated, ((rotated[-1][0] + 1) if rotated else 1, active)]
    segments = []
    for number, file in files:
        read = read_records(file)
        damage = ""
        if read.bad_line is not None:
            damage = f"line {read.bad_line} is not a valid record"
        elif read.torn_tail:
            damage = "torn last line (interrupted write)"
        segments.append(Segment(number, read.records, damage))
    return segments


def verify_trail_at(path: Path) -> TrailReport:
    """``verify_trail`` over the files of the trail at ``path`` (file or folder)."""
    return verify_trail(read_trail(path))


def verify_file(path: Path) -> VerifyResult:
    """The whole trail whose active file is ``path`` (its segments included), as one
    result: intact, or the first bad record and why."""
    report = verify_trail_at(path)
    return VerifyResult(report.ok, report.checked, report.first_bad_seq, report.problem)


class AuditLog:
    """Appends records to one file; the last record is kept to chain the next one."""

    def __init__(
        self,
        path: Path,
        fsync_every: int = 1,
        segment_bytes: int | None = None,
        max_bytes: int | None = None,
        keep: timedelta = timedelta(days=30),
        sealer: SealKey | None = None,
    ) -> None:
        """``sealer``: seal every record with the current epoch's key (``edge.seal``)."""
        self.path = path
        self._sealer = sealer
        self._closing = False  # an epoch's closing record waits to be durable
        self._fsync_every = max(1, fsync_every)
        self._unsynced = 0
        self._segment_bytes = segment_bytes
        self._max_bytes = max_bytes
        self._keep = keep
        self.deleted_segments = 0  # counted by the agent
        self.over_cap = False  # over max_bytes with every old segment still needed
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        read = read_records(path)
        if read.torn_tail or read.bad_line is not None:
            # Keep the evidence, and start a clean line: the torn tail stays in the file
            # and verify() reports it; new records chain from the last good one.
            with path.open("ab") as handle:
                handle.write(b"\n")
        last = read.records[-1] if read.records else None
        if last is None:
            rotated = segment_paths(path)
            last = read_records(rotated[-1][1]).records[-1] if rotated else None
        self._last: AuditRecord | None = last
        self._backlog: list[bytes] = []
        # Unbuffered appends: a write either lands (whole or in part, tracked below) or
        # fails, so a full disk never leaves a half-written line that gets written twice.
        self._fd: int | None = self._open()

    def _open(self) -> int:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.chmod(self.path, 0o600)
        return fd

    @property
    def last(self) -> AuditRecord | None:
        return self._last

    def append(self, event: AuditEvent, time: str, **fields: object) -> AuditRecord:
        """Chain and write one record. On a full disk the line is held in memory, in
        order, and written by the next append or sync that finds room (``backlog``)."""
        seal_with = None
        if self._sealer is not None:
            if self._sealer.due(time):
                self._close_epoch(self._sealer, time)
            seal_with = self._sealer.current()
            self._sealer.count()
        record, line = chain_line(self._last, event, time, seal_with, **fields)
        self._last = record
        self._backlog.append((line + "\n").encode())
        if self._fsync_every == 1 or len(self._backlog) >= MAX_GATHERED:
            self._write_backlog()
        if self._unsynced >= self._fsync_every:
            self.sync()
        return record

    def _close_epoch(self, sealer: SealKey, time: str) -> None:
        """The epoch's last record, sealed with its own key: the verifier then knows where
        the epoch ended, so none of its records can be dropped or moved into a later epoch
        by someone holding a later key. Durable before the key moves on; on a full disk
        the epoch stays open (its key is kept) until the record is written."""
        if not self._closing:
            epoch, key = sealer.current()
            record, line = chain_line(
                self._last,
                AuditEvent.EPOCH_CLOSED,
                time,
                (epoch, key),
                counts={"records": sealer.records},
                detail=f"epoch {epoch} closed",
            )
            self._last = record
            self._backlog.append((line + "\n").encode())
            self._closing = True
        self._write_backlog()
        if self._backlog or self._fd is None:
            return
        try:
            os.fsync(self._fd)
        except OSError:
            return
        self._unsynced = 0
        self._closing = False
        sealer.advance(time)

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    def _write_backlog(self) -> None:
        while self._backlog and self._fd is not None:
            lines = len(self._backlog)
            data = self._backlog[0] if lines == 1 else b"".join(self._backlog)
            try:
                written = os.write(self._fd, data)
            except OSError:
                self._backlog = [data]  # no room now; the lines stay queued, in order
                return
            if written < len(data):
                self._backlog = [data[written:]]
                continue
            self._backlog = []
            self._unsynced += lines

    def sync(self) -> None:
        """Make everything appended so far durable (the agent calls it once per batch);
        then rotate and apply the cap, at this batch boundary."""
        self._write_backlog()
        if self._unsynced and self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError:
                return
            self._unsynced = 0
        if self._segment_bytes is not None and self._fd is not None and not self._backlog:
            try:
                if os.fstat(self._fd).st_size >= self._segment_bytes:
                    self._rotate(self._fd)
            except OSError:
                return  # no room to rotate now: the next sync tries again

    def _rotate(self, fd: int) -> None:
        """The active file becomes the next numbered segment; a new one continues the
        chain (its first record's ``prev`` is the last hash of the renamed one)."""
        rotated = segment_paths(self.path)
        number = rotated[-1][0] + 1 if rotated else 1
        os.close(fd)
        self._fd = None
        os.rename(self.path, self.path.with_name(f"{self.path.stem}.{number:06d}.jsonl"))
        self._fd = self._open()
        _fsync_dir(self.path.parent)
        if self._max_bytes is not None:
            self._apply_cap(self._max_bytes)

    def _apply_cap(self, max_bytes: int) -> None:
        last = self._last
        if last is None:
            return
        infos: list[SegmentInfo] = []
        paths: dict[int, Path] = {}
        tails: dict[int, AuditRecord] = {}
        for number, file in segment_paths(self.path):
            tail = _last_record(file)
            if tail is None:
                continue
            tails[number], paths[number] = tail, file
            newest = datetime.fromisoformat(tail.time)
            infos.append(SegmentInfo(number, file.stat().st_size, newest))
        active = self.path.stat().st_size
        keep_after = datetime.fromisoformat(last.time) - self._keep
        chosen, self.over_cap = segments_to_delete(infos, active, max_bytes, keep_after)
        for info in chosen:
            tail = tails[info.number]
            self.append(
                AuditEvent.SEGMENT_DELETED,
                last.time,
                counts={"segment": info.number, "records": tail.seq, "bytes": info.size},
                detail=deletion_detail(info.number, tail),
            )
            self._write_backlog()
            if self._fd is None or self._backlog:
                return  # the record is not durable: the segment stays
            os.fsync(self._fd)
            self._unsynced = 0
            paths[info.number].unlink()
            self.deleted_segments += 1
        if chosen:
            _fsync_dir(self.path.parent)

    def records(self) -> Iterator[AuditRecord]:
        """Every record of the trail, oldest segment first."""
        for segment in read_trail(self.path):
            yield from segment.records

    def abandon(self) -> None:
        """Let go of the file without a final fsync, as a process that dies does."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
            self._fd = None


def _fsync_dir(folder: Path) -> None:
    """A rename or an unlink is durable once its folder is fsynced."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _last_record(file: Path) -> AuditRecord | None:
    """The last complete record of a segment, read from its end (segments are large)."""
    with file.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - 65536))
        lines = handle.read().split(b"\n")
    for line in reversed(lines[1:] if size > 65536 else lines):
        try:
            return parse_record(line.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue
    return None
