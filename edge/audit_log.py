"""Shell: the audit trail on disk: append-only JSON Lines, one hash-chained record a line.

``append`` computes the next record from the last one (read back at open), writes one
line and flushes it; ``fsync`` happens on every record by default (``fsync_every=1``), or
every N records and at ``close``. A torn last line (power cut in the middle of a write)
is reported by ``read_all``/``verify_file`` as a torn tail, never silently accepted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edge.audit import AuditEvent, AuditRecord, VerifyResult, chain, parse_record, verify
from edge.errors import StoreError


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
        self._file = path.open("a", encoding="utf-8")
        os.chmod(path, 0o600)

    @property
    def last(self) -> AuditRecord | None:
        return self._last

    def append(self, event: AuditEvent, time: str, **fields: object) -> AuditRecord:
        record = chain(self._last, event, time, **fields)
        self._file.write(record.to_json() + "\n")
        self._file.flush()
        self._unsynced += 1
        if self._unsynced >= self._fsync_every:
            os.fsync(self._file.fileno())
            self._unsynced = 0
        self._last = record
        return record

    def sync(self) -> None:
        """Make everything appended so far durable (the agent calls it once per batch)."""
        if self._unsynced:
            os.fsync(self._file.fileno())
            self._unsynced = 0

    def records(self) -> Iterator[AuditRecord]:
        return iter(read_records(self.path).records)

    def abandon(self) -> None:
        """Let go of the file without a final fsync, as a process that dies does."""
        if not self._file.closed:
            self._file.close()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
