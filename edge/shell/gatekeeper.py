"""Shell: every message the agent makes passes here: decided by the policy gate with the
device's state *as it is now*, inspected if it carries a clip, released with a fresh
record id, and handed to the outbox writer; what the gate removes is counted and audited.

The decisions are pure (``edge.policy.gate``, ``edge.produce.media_checked``,
``edge.release``); this module only supplies the clock, the ids and the records.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime

from edge import produce
from edge.audit import AuditEvent
from edge.control import DeviceState
from edge.model import Count, Priority
from edge.policy.gate import Candidate, Decision, decide
from edge.release import Release, release
from edge.shell.clock import Clock
from edge.shell.recorder import Recorder
from edge.shell.writer import OutboxWriter
from edge.topics import RETAINED_CHANNELS, Channel, Topics

logger = logging.getLogger(__name__)


class Gatekeeper:
    """Gate, release and queue; ``device`` gives the state the gate must judge by."""

    def __init__(
        self,
        device: Callable[[], DeviceState],
        topics: Topics,
        clock: Clock,
        counters: Counter[str],
        recorder: Recorder,
        writer: OutboxWriter,
        snapshot: Callable[[], dict[str, str]],
    ) -> None:
        self._device = device
        self._topics = topics
        self._clock = clock
        self._counters = counters
        self._recorder = recorder
        self._writer = writer
        self._snapshot = snapshot

    def decide(self, candidate: Candidate) -> Decision:
        device = self._device()
        decision = decide(
            candidate, device.manifest, device.consent, device.audio_on, self._clock.now()
        )
        if decision.failure:
            self._counters[Count.GATE_FAILURES] += 1
            logger.error("policy evaluation failed; nothing leaves: %s", decision.failure)
        return decision

    def release(
        self,
        decision: Decision,
        channel: Channel,
        priority: Priority,
        retain: bool = False,
        created_at: datetime | None = None,
    ) -> Release:
        """``created_at`` is when the device produced the data: retention counts from it."""
        return release(
            record_id=uuid.uuid4().hex,
            topic=self._topics.of(channel),
            purpose=decision.purpose,
            priority=priority,
            created_at=created_at or self._clock.now(),
            kept={str(k): v for k, v in decision.kept.items()},
            clauses={str(k): v for k, v in decision.clauses.items()},
            removed_count=len(decision.removed),
            policy_version=decision.policy_version,
            retention=decision.retention,
            retain=retain,
        )

    def submit(
        self,
        candidate: Candidate,
        channel: Channel,
        priority: Priority,
        counts: Mapping[str, int] | None = None,
    ) -> Release | None:
        """Gate one candidate; queue what it keeps (at the next commit); audit the rest.
        ``counts``: what producing it took (plates blurred, an anonymiser fallback), counted
        and audited with it."""
        if counts:
            self._counters.update(counts)
            if any(name.startswith("anonymiser_fallback") for name in counts):
                topic = self._topics.of(channel)
                self._recorder.agent(AuditEvent.FALLBACK, topic=topic, counts=counts)
        decision = self.decide(candidate)
        audit_counts = {f"removed_{reason.value}": 0 for reason in decision.removed.values()}
        for reason in decision.removed.values():
            audit_counts[f"removed_{reason.value}"] += 1
            self._counters[f"removed_{reason.value}"] += 1
        audit_counts.update(counts or {})
        if decision.allowed:
            decision, media_counts = produce.media_checked(decision)
            audit_counts.update(media_counts)
            self._counters.update(media_counts)
            if not decision.allowed:
                logger.warning("clip refused: it fails the audio rule or cannot be checked")
        if not decision.allowed:
            self._counters[Count.DENIED] += 1
            self._recorder.agent(
                AuditEvent.DENIED,
                topic=self._topics.of(channel),
                counts=audit_counts,
                detail=f"{candidate.purpose.value}: nothing may leave",
            )
            return None
        retain = channel in RETAINED_CHANNELS
        item = self.release(decision, channel, priority, retain, candidate.created_at)
        self._writer.add(item, counts=audit_counts, consent=self._snapshot())
        return item
