"""Pure: the tamper-evident audit trail's records and their hash chain.

Each record carries the SHA-256 of the previous record (``prev``) and its own ``hash``
over the canonical JSON of every other member, so editing, removing, inserting or
reordering any record breaks the chain at that point. Records name what happened to a
message (sent, acknowledged, dropped, expired, denied, purged, refused by the broker...),
its topic, payload digest and size, the policy version and clause, and counts of what
was removed or blurred: never a payload or a field value.

The trail is kept in numbered segments (rotated by size) with one chain across them: a
segment's first record names the hash of the previous segment's last one. When the trail
is over its size cap, the agent may delete its oldest segment once every record in it is
past the retention that needs it; it first appends a ``SEGMENT_DELETED`` record naming
that segment's last sequence number and hash, so ``verify_trail`` can tell a segment the
agent deleted from one somebody removed.

An erase (the data subject's right) keeps the chain: the ``ERASED`` record's ``prev`` is
the hash of the last record before the erase, and the erased records are summarised
by count and by the hash of the last one, so the trail stays verifiable.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

GENESIS = "0" * 64


class AuditEvent(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    ACKED = "acked"
    UNCONFIRMED = "unconfirmed"  # MQTT 3.1.1: the broker acknowledges even what it drops
    DROPPED = "dropped"
    EXPIRED = "expired"
    DENIED = "denied"
    PURGED = "purged"
    REFUSED_BY_BROKER = "refused_by_broker"
    FALLBACK = "anonymiser_fallback"
    CONSENT_GRANTED = "consent_granted"
    CONSENT_REFUSED = "consent_refused"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    POLICY_SWITCHED = "policy_switched"
    AUDIO_TOGGLED = "audio_toggled"
    COMMAND = "command"
    INPUT_REFUSED = "input_refused"  # a malformed device input, refused alone
    CONNECTED = "connected"
    QUARANTINED = "quarantined"
    ERASED = "erased"
    EPOCH_CLOSED = "epoch_closed"  # the seal key's epoch ends here (edge.seal)
    SEGMENT_DELETED = "segment_deleted"  # the oldest segment, past retention, over the cap
    STARTED = "started"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    time: str
    event: AuditEvent
    topic: str = ""
    payload_sha256: str = ""
    size: int = 0
    qos: int | None = None
    reason_code: int | None = None
    policy_version: str = ""
    clause: str = ""
    consent: Mapping[str, str] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)
    record_id: str = ""
    detail: str = ""
    prev: str = GENESIS
    epoch: int | None = None  # the seal's epoch (edge.seal); None: an unsealed trail
    hash: str = ""
    seal: str = ""  # HMAC of ``hash`` under the epoch's key; outside the hashed body

    def body(self) -> dict[str, object]:
        body = self._body()
        if self.epoch is not None:
            body["epoch"] = self.epoch
        return body

    def _body(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "time": self.time,
            "event": self.event.value,
            "topic": self.topic,
            "payload_sha256": self.payload_sha256,
            "size": self.size,
            "qos": self.qos,
            "reason_code": self.reason_code,
            "policy_version": self.policy_version,
            "clause": self.clause,
            "consent": dict(sorted(self.consent.items())),
            "counts": dict(sorted(self.counts.items())),
            "record_id": self.record_id,
            "detail": self.detail,
            "prev": self.prev,
        }

    def to_json(self) -> str:
        sealed = {"seal": self.seal} if self.seal else {}
        return json.dumps(
            {**self.body(), "hash": self.hash, **sealed}, separators=(",", ":"), ensure_ascii=False
        )


def _canonical(body: Mapping[str, object]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(body: Mapping[str, object]) -> str:
    return hashlib.sha256(_canonical(body).encode()).hexdigest()


def chain(
    prev: AuditRecord | None,
    event: AuditEvent,
    time: str,
    seal_with: tuple[int, bytes] | None = None,
    **fields: object,
) -> AuditRecord:
    """The next record after ``prev`` (None: the first record)."""
    return chain_line(prev, event, time, seal_with, **fields)[0]


def chain_line(
    prev: AuditRecord | None,
    event: AuditEvent,
    time: str,
    seal_with: tuple[int, bytes] | None = None,
    **fields: object,
) -> tuple[AuditRecord, str]:
    """The next record and its JSON line (no newline), the canonical JSON encoded once:
    the agent writes two records per message, so this is on the hot path.
    ``seal_with``: (epoch, key) to seal it with (``edge.seal``)."""
    draft = AuditRecord(
        seq=(prev.seq + 1) if prev else 1,
        time=time,
        event=event,
        prev=prev.hash if prev else GENESIS,
        epoch=seal_with[0] if seal_with else None,
        **fields,  # type: ignore[arg-type]
    )
    canonical = _canonical(draft.body())
    record_hash = hashlib.sha256(canonical.encode()).hexdigest()
    object.__setattr__(draft, "hash", record_hash)  # sealed before anyone else sees it
    if seal_with is None:
        return draft, f'{canonical[:-1]},"hash":"{record_hash}"}}'
    mac = hmac.new(seal_with[1], bytes.fromhex(record_hash), hashlib.sha256).hexdigest()
    object.__setattr__(draft, "seal", mac)
    return draft, f'{canonical[:-1]},"hash":"{record_hash}","seal":"{mac}"}}'


def _sealed(record: AuditRecord) -> AuditRecord:
    return replace(record, hash=digest(record.body()))


def parse_record(line: str) -> AuditRecord:
    """Raises ValueError on a malformed line (a torn write, an edit that broke the JSON)."""
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    try:
        return AuditRecord(
            seq=int(data["seq"]),
            time=str(data["time"]),
            event=AuditEvent(data["event"]),
            topic=str(data["topic"]),
            payload_sha256=str(data["payload_sha256"]),
            size=int(data["size"]),
            qos=data["qos"],
            reason_code=data["reason_code"],
            policy_version=str(data["policy_version"]),
            clause=str(data["clause"]),
            consent=dict(data["consent"]),
            counts=dict(data["counts"]),
            record_id=str(data["record_id"]),
            detail=str(data["detail"]),
            prev=str(data["prev"]),
            epoch=_epoch(data.get("epoch")),
            hash=str(data["hash"]),
            seal=str(data.get("seal", "")),
        )
    except (KeyError, TypeError) as err:
        raise ValueError(f"missing or mistyped member: {err}") from err


def _epoch(value: object) -> int | None:
    if value is None or isinstance(value, int):
        return value
    raise ValueError(f"epoch: expected an integer, got {value!r}")


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""


def verify(
    records: Iterable[AuditRecord], prev_hash: str = GENESIS, first_seq: int | None = None
) -> VerifyResult:
    """Check the chain: each hash matches its record, each ``prev`` the record before,
    and sequence numbers follow each other (so a removed or reordered record is found).
    ``prev_hash``/``first_seq``: where the records must start (a later segment)."""
    expected_seq = first_seq
    checked = 0
    for record in records:
        if record.hash != digest(record.body()):
            return VerifyResult(
                False, checked, record.seq, "record edited: its hash does not match"
            )
        if record.prev != prev_hash:
            return VerifyResult(
                False,
                checked,
                record.seq,
                "chain broken: a record before it was removed, inserted or edited",
            )
        if expected_seq is not None and record.seq != expected_seq:
            return VerifyResult(
                False,
                checked,
                record.seq,
                f"sequence jumps from {expected_seq - 1} to {record.seq}",
            )
        prev_hash = record.hash
        expected_seq = record.seq + 1
        checked += 1
    return VerifyResult(True, checked)


# -- segments ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    """One file of the trail as read: ``number`` (the active file is the last one) and
    ``damage``, what could not be read (a torn line, a malformed one), if anything."""

    number: int
    records: Sequence[AuditRecord]
    damage: str = ""


@dataclass(frozen=True, slots=True)
class SegmentReport:
    number: int
    records: int
    first_seq: int | None
    last_seq: int | None
    problem: str = ""  # empty: intact


@dataclass(frozen=True, slots=True)
class TrailReport:
    ok: bool
    checked: int
    segments: tuple[SegmentReport, ...]
    first_bad_seq: int | None = None
    problem: str = ""
    deleted: int = 0  # oldest segments the agent deleted (vouched for by their records)


def deletion_detail(number: int, last: AuditRecord) -> str:
    """The ``detail`` of a ``SEGMENT_DELETED`` record (parsed back by ``verify_trail``)."""
    return f"segment {number}: records up to {last.seq}, last hash {last.hash}"


def _deletions(segments: Sequence[Segment]) -> dict[str, int]:
    """last hash -> last seq, for every segment the agent says it deleted."""
    found: dict[str, int] = {}
    for segment in segments:
        for record in segment.records:
            if record.event is AuditEvent.SEGMENT_DELETED:
                words = record.detail.split()
                if len(words) >= 8 and words[-3] == "last" and words[-2] == "hash":
                    found[words[-1]] = int(words[-4].rstrip(","))
    return found


def verify_trail(segments: Sequence[Segment]) -> TrailReport:
    """Check a trail of segments, oldest first: each intact, numbered without a gap, one
    chain across them. The oldest may start after GENESIS only where a later
    ``SEGMENT_DELETED`` record names exactly where it starts (a segment the agent deleted
    past retention); otherwise its beginning was removed."""
    reports: list[SegmentReport] = []
    checked = 0
    prev_hash: str | None = None
    next_seq: int | None = None
    deleted = 0
    vouched = _deletions(segments)

    def fail(number: int, seq: int | None, problem: str) -> TrailReport:
        reports.append(SegmentReport(number, 0, None, None, problem))
        return TrailReport(False, checked, tuple(reports), seq, f"segment {number}: {problem}")

    for index, segment in enumerate(segments):
        if index and segment.number != segments[index - 1].number + 1:
            missing = segments[index - 1].number + 1
            return fail(segment.number, next_seq, f"segment {missing} is missing before it")
        records = segment.records
        if prev_hash is None and records:
            first = records[0]
            if first.prev != GENESIS:
                if vouched.get(first.prev) != first.seq - 1:
                    return fail(
                        segment.number,
                        first.seq,
                        "the trail's beginning is missing (removed without a deletion record)",
                    )
                deleted = segment.number - 1 if segment.number > 0 else 1
            prev_hash, next_seq = first.prev, first.seq
        result = verify(records, prev_hash or GENESIS, next_seq)
        checked += result.checked
        first_seq = records[0].seq if records else None
        last_seq = records[-1].seq if records else None
        if not result.ok:
            reports.append(
                SegmentReport(segment.number, result.checked, first_seq, None, result.problem)
            )
            problem = f"segment {segment.number}: {result.problem}"
            return TrailReport(
                False, checked, tuple(reports), result.first_bad_seq, problem, deleted
            )
        if segment.damage:
            bad = (last_seq or 0) + 1
            reports.append(
                SegmentReport(segment.number, len(records), first_seq, last_seq, segment.damage)
            )
            problem = f"segment {segment.number}: {segment.damage}"
            return TrailReport(False, checked, tuple(reports), bad, problem, deleted)
        reports.append(SegmentReport(segment.number, len(records), first_seq, last_seq))
        if records:
            prev_hash, next_seq = records[-1].hash, records[-1].seq + 1
    return TrailReport(True, checked, tuple(reports), deleted=deleted)


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """What the cap needs to know of a rotated segment."""

    number: int
    size: int
    newest: datetime  # the time of its last record


def segments_to_delete(
    rotated: Sequence[SegmentInfo], active_size: int, max_bytes: int, keep_after: datetime
) -> tuple[list[SegmentInfo], bool]:
    """Oldest first, while the trail is over ``max_bytes``: segments whose every record is
    older than ``keep_after`` (past every retention that needs it). Returns them, and
    whether the trail stays over the cap because the next oldest is still needed."""
    total = active_size + sum(s.size for s in rotated)
    chosen: list[SegmentInfo] = []
    for segment in sorted(rotated, key=lambda s: s.number):
        if total <= max_bytes:
            return chosen, False
        if segment.newest >= keep_after:
            return chosen, True
        chosen.append(segment)
        total -= segment.size
    return chosen, total > max_bytes
