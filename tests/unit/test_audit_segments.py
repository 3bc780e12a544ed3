"""The audit trail in segments: one chain across them, a bounded size, and every way a
segment can go missing or move is reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge.audit import AuditEvent, SegmentInfo, segments_to_delete
from edge.shell.audit_log import (
    AuditLog,
    read_records,
    segment_paths,
    verify_file,
    verify_trail_at,
)
from tests.cli import run_edge

START = datetime(2026, 1, 1, tzinfo=UTC)


def _write(log: AuditLog, count: int, start: datetime, first: int = 0) -> None:
    for i in range(count):
        moment = start + timedelta(minutes=i)
        log.append(
            AuditEvent.ACKED,
            moment.isoformat(),
            topic="devices/SN0001/telemetry",
            payload_sha256="ab" * 32,
            size=100,
            record_id=f"r{first + i}",
        )
        log.sync()  # the agent syncs once per batch: rotation happens there


def _rotated_trail(tmp_path: Path, records: int = 60) -> Path:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, segment_bytes=4096)
    _write(log, records, START)
    log.close()
    return path


def test_a_rotated_trail_keeps_one_chain_across_its_segments(tmp_path: Path) -> None:
    path = _rotated_trail(tmp_path)
    assert len(segment_paths(path)) >= 3
    report = verify_trail_at(tmp_path)
    assert report.ok, report.problem
    assert report.checked == 60
    assert [s.number for s in report.segments] == list(range(1, len(report.segments) + 1))
    log = AuditLog(path, segment_bytes=4096)  # a restart chains on from the last record
    _write(log, 5, START + timedelta(days=1), first=60)
    log.close()
    assert [r.record_id for r in AuditLog(path).records()] == [f"r{i}" for i in range(65)]
    assert verify_file(path).ok


def test_a_missing_middle_segment_is_named(tmp_path: Path) -> None:
    path = _rotated_trail(tmp_path)
    segment_paths(path)[1][1].unlink()
    report = verify_trail_at(path)
    assert not report.ok
    assert "segment 2 is missing" in report.problem


def test_segments_swapped_break_the_chain(tmp_path: Path) -> None:
    path = _rotated_trail(tmp_path)
    (_, first), (_, second) = segment_paths(path)[:2]
    a, b = first.read_bytes(), second.read_bytes()
    first.write_bytes(b)
    second.write_bytes(a)
    report = verify_trail_at(path)
    assert not report.ok
    assert "segment 1" in report.problem


def test_an_oldest_segment_removed_by_hand_is_not_taken_for_retention(tmp_path: Path) -> None:
    path = _rotated_trail(tmp_path)
    segment_paths(path)[0][1].unlink()
    for number, file in segment_paths(path):  # renumber, as someone hiding it would
        file.rename(file.with_name(f"audit.{number - 1:06d}.jsonl"))
    report = verify_trail_at(path)
    assert not report.ok
    assert "beginning is missing" in report.problem


def test_over_the_cap_the_oldest_segments_past_retention_go_with_a_record(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, segment_bytes=4096, max_bytes=12288, keep=timedelta(days=7))
    _write(log, 60, START)  # an hour of records, over the cap, all still needed
    assert log.over_cap
    assert log.deleted_segments == 0
    _write(log, 25, START + timedelta(days=30), first=60)  # a month later
    log.close()
    assert log.deleted_segments >= 1
    # What stays over the cap is only what is still needed: the oldest remaining segment
    # ends with a record of the last seven days.
    oldest = read_records(segment_paths(path)[0][1]).records
    assert datetime.fromisoformat(oldest[-1].time) >= START + timedelta(days=23)
    report = verify_trail_at(path)
    assert report.ok, report.problem
    assert report.deleted >= 1
    deletions = [r for r in AuditLog(path).records() if r.event is AuditEvent.SEGMENT_DELETED]
    assert len(deletions) == log.deleted_segments
    assert all(r.counts["records"] > 0 for r in deletions)


def test_a_segment_still_within_retention_is_never_deleted(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, segment_bytes=4096, max_bytes=12288, keep=timedelta(days=7))
    _write(log, 120, START)  # two hours of records: all within seven days
    log.close()
    assert log.deleted_segments == 0
    assert log.over_cap
    assert segment_paths(path)[0][0] == 1
    assert verify_trail_at(path).ok


def test_the_deletion_rule_is_oldest_first_and_stops_at_a_needed_segment() -> None:
    old, new = START, START + timedelta(days=30)
    rotated = [
        SegmentInfo(1, 100, old),
        SegmentInfo(2, 100, new),  # still needed
        SegmentInfo(3, 100, old),
    ]
    keep_after = START + timedelta(days=20)
    chosen, over = segments_to_delete(rotated, 100, 150, keep_after)
    assert [s.number for s in chosen] == [1]
    assert over
    chosen, over = segments_to_delete(rotated, 100, 1000, keep_after)
    assert (chosen, over) == ([], False)


def test_audit_verify_reports_each_segment(tmp_path: Path) -> None:
    path = _rotated_trail(tmp_path)
    result = run_edge("audit", "verify", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "segment 1:" in result.stdout
    assert "OK: 60 records, chain intact" in result.stdout
    segment_paths(path)[1][1].unlink()
    result = run_edge("audit", "verify", str(path))
    assert result.returncode == 1
    assert "segment 2 is missing" in result.stdout
