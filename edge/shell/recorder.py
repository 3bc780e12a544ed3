"""Shell: the agent's audit records, in the shapes a privacy officer reads: one record
about the agent (with the accepted version and the consent snapshot at that moment), one
about one message (where, how big, its digest, under which clause), one per outbox drop.

The record shapes live here once; the agent says what happened, this module says how it
is written (``edge.shell.audit_log`` chains and fsyncs the lines).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable

from edge.audit import AuditEvent
from edge.outbox import Dropped, DropReason, OutboxItem
from edge.release import Release
from edge.shell.audit_log import AuditLog
from edge.shell.clock import Clock

DROP_EVENTS = {
    DropReason.EXPIRED: AuditEvent.EXPIRED,
    DropReason.PURGED: AuditEvent.PURGED,
    DropReason.REFUSED_BY_BROKER: AuditEvent.REFUSED_BY_BROKER,
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Recorder:
    """Writes the agent's audit records; ``context`` gives the accepted version and the
    consent snapshot as they are when a record is written."""

    def __init__(
        self,
        log: AuditLog,
        clock: Clock,
        counters: Counter[str],
        context: Callable[[], tuple[str, dict[str, str]]],
    ) -> None:
        self.log = log
        self._clock = clock
        self._counters = counters
        self._context = context

    def agent(self, event: AuditEvent, **fields: object) -> None:
        """A record about the agent itself: a start, a consent change, a refusal."""
        version, consent = self._context()
        self.log.append(
            event,
            self._clock.now().isoformat(),
            policy_version=version,
            consent=consent,
            **fields,
        )

    def message(self, event: AuditEvent, item: Release | OutboxItem, **fields: object) -> None:
        """One record about one message: where, how big, its digest, under which clause."""
        self.log.append(
            event,
            self._clock.now().isoformat(),
            topic=item.topic,
            payload_sha256=sha256(item.payload),
            size=len(item.payload),
            qos=item.qos,
            record_id=item.record_id,
            policy_version=item.policy_version,
            clause=item.clause,
            **fields,
        )

    def retained_sent(self, topic: str, payload: bytes, clause: str, detail: str) -> None:
        """A retained status sent at once (availability, birth), never queued."""
        version, _ = self._context()
        self.log.append(
            AuditEvent.SENT,
            self._clock.now().isoformat(),
            topic=topic,
            payload_sha256=sha256(payload),
            size=len(payload),
            qos=1,
            policy_version=version,
            clause=clause,
            detail=detail,
        )

    def drops(self, drops: list[Dropped]) -> None:
        """Items the outbox let go (expired, purged, overflowed, refused): each counted by
        reason and recorded."""
        for drop in drops:
            self._counters[f"dropped_{drop.reason.value}"] += 1
            self.log.append(
                DROP_EVENTS.get(drop.reason, AuditEvent.DROPPED),
                self._clock.now().isoformat(),
                topic=drop.topic,
                size=drop.size,
                record_id=drop.record_id,
                policy_version=drop.policy_version,
                clause=drop.clause,
                detail=drop.reason.value,
            )
