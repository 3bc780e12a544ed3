"""Pure: the only way a message becomes sendable: a gate ``Decision`` turned into a ``Release``.

The transport publishes ``Release`` values and nothing else, and only this module builds
them (``tests/unit/test_release.py`` checks that no other module calls ``Release(``). A
release carries the policy version and the clause of every kept field, so the audit trail
can say under which clause each message left.

Payload envelope (JSON, UTF-8, documented in docs/mqtt.md)::

    {"v": 1, "record_id": "...", "created_at": "2026-11-23T12:00:00+00:00",
     "policy_version": "en-2023-01-10", "purpose": "notification",
     "data": {"serial_number": "SN0001", "alarm_snapshot": {"b64": "...", "type": "image/jpeg"}}}

Binary fields (images, clips) travel as ``{"b64": ..., "type": ...}`` so that every field
that leaves is named in ``data`` and a backend (or the leak audit) can check each one.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from edge.errors import InputError
from edge.model import Priority, Purpose

ENVELOPE_VERSION = 1

MEDIA_TYPES = {
    "alarm_snapshot": "image/jpeg",
    "event_clip": "video/mp4",
}


@dataclass(frozen=True, slots=True)
class Release:
    """A message the gate allowed, ready for the outbox and the transport."""

    record_id: str
    topic: str
    payload: bytes
    qos: int
    retain: bool
    purpose: Purpose
    priority: Priority
    created_at: datetime
    expires_at: datetime | None
    policy_version: str
    clause: str  # the clauses relied on, ";"-joined, for the audit trail
    kept: int  # number of fields kept
    removed: int  # number of fields the gate removed


def encode_value(name: str, value: object) -> object:
    """JSON form of one field value; bytes become ``{"b64", "type"}``."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {
            "b64": base64.b64encode(bytes(value)).decode("ascii"),
            "type": MEDIA_TYPES.get(name, "application/octet-stream"),
        }
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return [encode_value(name, item) for item in value]
    return value


def build_payload(
    record_id: str,
    created_at: datetime,
    policy_version: str,
    purpose: Purpose,
    kept: Mapping[str, object],
) -> bytes:
    """The JSON envelope of a release (see the module docstring)."""
    body = {
        "v": ENVELOPE_VERSION,
        "record_id": record_id,
        "created_at": created_at.isoformat(),
        "policy_version": policy_version,
        "purpose": purpose.value,
        "data": {str(name): encode_value(str(name), value) for name, value in kept.items()},
    }
    try:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    except (TypeError, ValueError) as err:
        raise InputError(f"payload: a field value is not JSON-serialisable: {err}") from err


def release(
    *,
    record_id: str,
    topic: str,
    purpose: Purpose,
    priority: Priority,
    created_at: datetime,
    kept: Mapping[str, object],
    clauses: Mapping[str, str],
    removed_count: int,
    policy_version: str,
    retention: timedelta | None,
    retain: bool = False,
    qos: int = 1,
) -> Release:
    """Turn the kept fields of a gate decision into a sendable message.

    Args:
        kept: the decision's kept fields (never anything else).
        clauses: the clause id of every kept field.
        retention: the shortest retention among kept fields; sets ``expires_at``.

    Raises:
        InputError: a kept value cannot be serialised (a contract was broken upstream).
    """
    payload = build_payload(record_id, created_at, policy_version, purpose, kept)
    return Release(
        record_id=record_id,
        topic=topic,
        payload=payload,
        qos=qos,
        retain=retain,
        purpose=purpose,
        priority=priority,
        created_at=created_at,
        expires_at=created_at + retention if retention is not None else None,
        policy_version=policy_version,
        clause=";".join(sorted(set(clauses.values()))),
        kept=len(kept),
        removed=removed_count,
    )


def clear_retained(
    *, record_id: str, topic: str, purpose: Purpose, created_at: datetime, reason: str
) -> Release:
    """An empty retained message that deletes a retained topic (MQTT 3.3.1.3).

    It carries no data at all, so it needs no clause; ``reason`` says why it was sent
    (e.g. consent withdrawn) for the audit trail.
    """
    return Release(
        record_id=record_id,
        topic=topic,
        payload=b"",
        qos=1,
        retain=True,
        purpose=purpose,
        priority=Priority.STATUS,
        created_at=created_at,
        expires_at=None,
        policy_version="",
        clause=f"clear-retained:{reason}",
        kept=0,
        removed=0,
    )
