"""Shell: the audit trail on disk: append-only JSON Lines, one hash-chained record a line.

``append`` computes the next record from the last one (read back at open) and writes
its line; ``fsync`` happens on every record by default (``fsync_every=1``), or every N
records and at ``sync``/``close``. With ``fsync_every`` > 1 lines are gathered and
written by one ``write`` at the next ``sync`` (the agent syncs once per batch): nothing
is durable before the fsync anyway, and one system call per line was a tenth of the
agent's time per message. A torn last line (power cut in the middle of a write)
is reported by ``read_all``/``verify_file`` as a torn tail, never silently accepted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edge.audit import AuditEvent, AuditRecord, VerifyResult, chain_line, parse_record, verify
from edge.errors import StoreError

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


def verify_file(path: Path) -> VerifyResult:
    read = read_records(path)
    if read.bad_line is not None:
        seq = read.records[-1].seq + 1 if read.records else 1
        return VerifyResult(
            False, len(read.records), seq, f"line {read.bad_line} is not a valid record"
        )
    result = verify(read.records)
    if result.ok and read.torn_tail:
        return VerifyResult(
            False, result.checked, result.checked + 1, "torn last line (interrupted write)"
        )
    return result


class AuditLog:
    """Appends records to one file; the last record is kept to chain the next one."""

    def __init__(self, path: Path, fsync_every: int = 1) -> None:
        self.path = path
        self._fsync_every = max(1, fsync_every)
        self._unsynced = 0
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        read = read_records(path)
        if read.torn_tail or read.bad_line is not None:
            # Keep the evidence, and start a clean line: the torn tail stays in the file
            # and verify() reports it; new records chain from the last good one.
            with path.open("ab") as handle:
                handle.write(b"\n")
        self._last: AuditRecord | None = read.records[-1] if read.records else None
        self._backlog: list[bytes] = []
        # Unbuffered appends: a write either lands (whole or in part, tracked below) or
        # fails, so a full disk never leaves a half-written line that gets written twice.
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.chmod(path, 0o600)

    @property
    def last(self) -> AuditRecord | None:
        return self._last

    def append(self, event: AuditEvent, time: str, **fields: object) -> AuditRecord:
        """Chain and write one record. On a full disk the line is held in memory, in
        order, and written by the next append or sync that finds room (``backlog``)."""
        record, line = chain_line(self._last, event, time, **fields)
        self._last = record
        self._backlog.append((line + "\n").encode())
        if self._fsync_every == 1 or len(self._backlog) >= MAX_GATHERED:
            self._write_backlog()
        if self._unsynced >= self._fsync_every:
            self.sync()
        return record

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
        """Make everything appended so far durable (the agent calls it once per batch)."""
        self._write_backlog()
        if self._unsynced and self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError:
                return
            self._unsynced = 0

    def records(self) -> Iterator[AuditRecord]:
        return iter(read_records(self.path).records)

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
