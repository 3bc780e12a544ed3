"""Shell: messages for transport tests, built the only way the agent builds them: a gate
decision turned into a ``Sendable`` by ``edge.release`` (the transport takes nothing
else)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from edge.model import Priority, Purpose
from edge.policy.catalogue import FieldName
from edge.policy.consent import ConsentState
from edge.policy.gate import Candidate, decide
from edge.release import Sendable, availability, release, sendable
from edge.shell.shipped import load_manifest

VERSION = "en-2023-01-10"


def availability_message(serial: str, state: str, session: int = 1) -> Sendable:
    """The retained availability a device sends (``{"state": ..., "session": ...}``)."""
    now = datetime.now(UTC)
    candidate = Candidate(Purpose.DEVICE_STATUS, {FieldName.ONLINE_STATUS: state}, now)
    decision = decide(candidate, load_manifest(VERSION), ConsentState(), False, now)
    found = availability(f"devices/{serial}/availability", decision, session)
    assert found is not None, "the gate keeps online_status under " + VERSION
    return found[0]


def telemetry_message(topic: str, serial: str) -> Sendable:
    """A released status report with the serial number only, on ``topic``."""
    now = datetime.now(UTC)
    candidate = Candidate(Purpose.DEVICE_STATUS, {FieldName.SERIAL_NUMBER: serial}, now)
    decision = decide(candidate, load_manifest(VERSION), ConsentState(), False, now)
    return sendable(
        release(
            record_id=uuid.uuid4().hex,
            topic=topic,
            purpose=decision.purpose,
            priority=Priority.STATUS,
            created_at=now,
            kept={str(k): v for k, v in decision.kept.items()},
            clauses={str(k): v for k, v in decision.clauses.items()},
            removed_count=len(decision.removed),
            policy_version=decision.policy_version,
            retention=decision.retention,
        )
    )
