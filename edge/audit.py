"""Pure: the tamper-evident audit trail's records and their hash chain.

Each record carries the SHA-256 of the previous record (``prev``) and its own ``hash``
over the canonical JSON of every other member, so editing, removing, inserting or
reordering any record breaks the chain at that point. Records name what happened to a
message (sent, acknowledged, dropped, expired, denied, purged, refused by the broker...),
its topic, payload digest and size, the policy version and clause, and counts of what
was removed or blurred: never a payload or a field value.

An erase (the data subject's right) keeps the chain: the ``ERASED`` record's ``prev`` is
the hash of the last record before the erase, and the erased records are summarised
by count and by the hash of the last one, so the trail stays verifiable.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
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
    hash: str = ""

    def body(self) -> dict[str, object]:
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
        return json.dumps(
            {**self.body(), "hash": self.hash}, separators=(",", ":"), ensure_ascii=False
        )


def _canonical(body: Mapping[str, object]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(body: Mapping[str, object]) -> str:
    return hashlib.sha256(_canonical(body).encode()).hexdigest()


def chain(prev: AuditRecord | None, event: AuditEvent, time: str, **fields: object) -> AuditRecord:
    """The next record after ``prev`` (None: the first record)."""
    return chain_line(prev, event, time, **fields)[0]


def chain_line(
    prev: AuditRecord | None, event: AuditEvent, time: str, **fields: object
) -> tuple[AuditRecord, str]:
    """The next record and its JSON line (no newline), the canonical JSON encoded once:
    the agent writes two records per message, so this is on the hot path."""
    draft = AuditRecord(
        seq=(prev.seq + 1) if prev else 1,
        time=time,
        event=event,
        prev=prev.hash if prev else GENESIS,
        **fields,  # type: ignore[arg-type]
    )
    canonical = _canonical(draft.body())
    record_hash = hashlib.sha256(canonical.encode()).hexdigest()
    object.__setattr__(draft, "hash", record_hash)  # sealed before anyone else sees it
    return draft, f'{canonical[:-1]},"hash":"{record_hash}"}}'


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
            hash=str(data["hash"]),
        )
    except (KeyError, TypeError) as err:
        raise ValueError(f"missing or mistyped member: {err}") from err


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""


def verify(records: Iterable[AuditRecord]) -> VerifyResult:
    """Check the chain: each hash matches its record, each ``prev`` the record before,
    and sequence numbers follow each other (so a removed or reordered record is found)."""
    prev_hash = GENESIS
    expected_seq: int | None = None
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
