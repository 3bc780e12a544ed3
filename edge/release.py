"""Pure: the only way a message becomes sendable: a gate ``Decision`` turned into a ``Release``.

Only this module builds a ``Release`` (from the kept fields of a gate decision) and a
``Sendable``, the one value the transport publishes (``Transport.publish`` and the Will
take nothing else, and a ``Sendable`` refuses to be built elsewhere). So a message that
did not pass the gate has no way onto the wire; ``tests/unit/test_release.py`` checks
the call sites. A release carries the policy version and the clause of every kept field,
so the audit trail can say under which clause each message left.

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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from edge.errors import InputError
from edge.model import Priority, Purpose
from edge.policy.catalogue import FieldName

if TYPE_CHECKING:
    from edge.outbox import OutboxItem
    from edge.policy.gate import Decision

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


class _Permit:
    """A one-time permission to build one ``Sendable``, issued only in this module."""

    __slots__ = ()


_PERMITS: set[object] = set()  # issued and not yet used


def _sendable(topic: str, payload: bytes, qos: int, retain: bool) -> Sendable:
    permit = _Permit()
    _PERMITS.add(permit)
    return Sendable(topic, payload, qos, retain, permit)


@dataclass(frozen=True, slots=True)
class Sendable:
    """What the transport publishes, and all it publishes: built only by ``sendable`` and
    ``availability`` below, from a released item or a gate decision. Each one uses up a
    permit that only this module issues, so neither a direct call nor
    ``dataclasses.replace`` (a new payload on an old permit) can make one elsewhere."""

    topic: str
    payload: bytes = field(repr=False)
    qos: int
    retain: bool
    seal: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            _PERMITS.remove(self.seal)
        except (KeyError, TypeError):
            raise TypeError(
                "a Sendable is built only by edge.release, from a gate decision"
            ) from None


def only_sendable(message: object) -> Sendable:
    """What a transport calls on every message (and Will) before it touches the wire.

    Raises:
        TypeError: not a ``Sendable`` (a bug: it bypassed the gate).
    """
    if not isinstance(message, Sendable):
        raise TypeError(f"only a Sendable from edge.release is published, not {message!r}")
    return message


def sendable(item: Release | OutboxItem) -> Sendable:
    """The wire form of a released item (queued or not; an outbox item was a release)."""
    return _sendable(item.topic, item.payload, item.qos, item.retain)


def availability(topic: str, decision: Decision, session: int) -> tuple[Sendable, str] | None:
    """The retained availability (``{"state": "online", "session": 7}``, not an envelope)
    and its clause, if the gate kept ``online_status``; None: nothing may say it. The
    counter lets a backend ignore a late Will from an older session (design.md §4)."""
    state = decision.kept.get(FieldName.ONLINE_STATUS)
    if not isinstance(state, str):
        return None
    payload = json.dumps({"state": state, "session": session}, separators=(",", ":")).encode()
    return _sendable(topic, payload, 1, True), decision.clauses[FieldName.ONLINE_STATUS]


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
