"""Shell: the agent's main loop, where sensors, the policy gate, the outbox, the audit trail
and the transport meet. It is the only place threads meet (one queue, one consumer).

Theory of operation. Everything that happens arrives on one ``queue.Queue``: device
inputs (camera, microphone, AI chip, button), transport events (connected, PUBACK,
command received) and ticks. The loop handles one event at a time:

1. A device input becomes candidate messages (``edge.produce``), each goes through the
   policy gate (``decide``) with the accepted manifest, the consent state and the audio
   toggle *as they are now*; what the gate keeps becomes a ``Release``, which is queued
   in the durable, encrypted outbox; what it removes is audited. Nothing else can send.
2. When connected, the outbox is pumped: up to ``max_inflight`` items are handed to the
   transport; an item is deleted only on its PUBACK (a refusal code is audited and the
   item dropped, counted). On connection loss in-flight items return to pending.
3. Commands (consent grant/withdraw, audio, policy version, status) are parsed at the
   boundary and answered on ``cmd/result``. A withdrawal purges that purpose's unsent
   items and clears its retained topics before the next message leaves.
"""

from __future__ import annotations

import logging
import queue
import random
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from edge import __version__, produce
from edge.audit import AuditEvent
from edge.audit_log import AuditLog
from edge.clock import Clock
from edge.commands import (
    AcceptPolicy,
    GrantConsent,
    Refused,
    RequestStatus,
    SetAudio,
    WithdrawConsent,
    parse_command,
)
from edge.config import AgentConfig
from edge.crypto import load_or_create_key
from edge.errors import EdgeError, InputError, PolicyError, TransportError
from edge.inputs import (
    AudioCaptured,
    ButtonPressed,
    DeviceInput,
)
from edge.model import Priority, Purpose
from edge.outbox import Dropped, Outbox, OutboxItem
from edge.policy import audio as audio_policy
from edge.policy.consent import ConsentState, grant, is_granted, switch_version, withdraw
from edge.policy.consent_file import load_consent, save_consent
from edge.policy.gate import Candidate, Decision, decide
from edge.policy.manifest import Manifest, list_versions, load_manifest
from edge.policy.receipts import parse_receipt
from edge.release import Release, clear_retained, rehydrate, release
from edge.session import (
    Connect,
    ConnectFailed,
    ConnectionLost,
    ConnectSucceeded,
    MessageReceived,
    PublishAcked,
    SessionConfig,
    SessionState,
    Subscribed,
    TransportEvent,
    on_connect_failed,
    on_connected,
    on_connection_lost,
    start,
)
from edge.state_file import AgentState, load_agent_state, save_agent_state
from edge.store import open_or_quarantine
from edge.topics import RETAINED_BY_PURPOSE, Channel, Topics
from edge.transport import MqttTransport, Will

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Tick:
    """Housekeeping: expire old items, report counters."""

    at: datetime


@dataclass(frozen=True, slots=True)
class Stop:
    """Shut down cleanly: publish ``stopped``, flush the audit trail."""


AgentEvent = TransportEvent | DeviceInput | Tick | Stop

TransportFactory = Callable[[str, "queue.Queue[AgentEvent]"], MqttTransport]


class Agent:
    """One device's agent. Build it, call ``run()`` (blocking) or drive ``handle()``."""

    def __init__(
        self,
        config: AgentConfig,
        clock: Clock,
        transport_factory: TransportFactory,
        app_public_key: object | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.events: queue.Queue[AgentEvent] = queue.Queue()
        self.topics = Topics(config.device.serial, config.broker.topic_prefix)
        self.counters: Counter[str] = Counter()
        state_dir = config.device.state_dir
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._state_path = state_dir / "agent.json"
        self._consent_path = state_dir / "consent.json"
        self.state: AgentState = load_agent_state(self._state_path, config.policy.version)
        self.manifest: Manifest = load_manifest(self.state.policy_version)
        self.consent: ConsentState = load_consent(self._consent_path)
        self.app_public_key = app_public_key
        self.audit = AuditLog(state_dir / "audit.jsonl")
        key = load_or_create_key(config.outbox_key_file)
        store, quarantined = open_or_quarantine(state_dir / "outbox.sqlite3", key)
        if quarantined is not None:
            logger.error("outbox store was unreadable; quarantined as %s", quarantined)
            self._audit(
                AuditEvent.QUARANTINED, detail=f"outbox store quarantined: {quarantined.name}"
            )
        self.outbox = Outbox(store, config.outbox.max_queue_bytes)
        self.session: SessionState
        self.session, first = start(
            SessionConfig(
                config.broker.endpoints, config.broker.backoff_base_s, config.broker.backoff_max_s
            )
        )
        self._first_connect = first
        self.transport = transport_factory(config.device.serial, self.events)  # type: ignore[arg-type]
        self.inflight: dict[int, OutboxItem] = {}
        self.stopped = False
        self._audio_buffer: list[AudioCaptured] = []

    # -- state queries -------------------------------------------------------------

    @property
    def audio_on(self) -> bool:
        """The audio toggle as the capture side must obey it (rule 5 of design.md)."""
        return audio_policy.may_open_microphone(self.manifest, self.state.audio_on)

    def consent_snapshot(self) -> dict[str, str]:
        return {
            purpose.value: (
                "granted" if is_granted(self.consent, purpose, self.manifest) else "off"
            )
            for purpose in self.manifest.consent_purposes()
        }

    # -- the loop ------------------------------------------------------------------

    def run(self, tick_s: float = 1.0) -> None:
        """Connect and handle events until a ``Stop`` arrives."""
        self._connect(self._first_connect)
        last_tick = self.clock.monotonic()
        while not self.stopped:
            try:
                event = self.events.get(timeout=tick_s)
            except queue.Empty:
                event = Tick(self.clock.now())
            if self.clock.monotonic() - last_tick >= tick_s and not isinstance(event, Tick):
                self.handle(Tick(self.clock.now()))
                last_tick = self.clock.monotonic()
            try:
                self.handle(event)
            except EdgeError:
                raise
            except Exception:
                self.counters["internal_errors"] += 1
                logger.exception("event %s failed; counted, continuing", type(event).__name__)

    def handle(self, event: AgentEvent) -> None:
        """Handle one event (tests drive the agent through this)."""
        if isinstance(event, ConnectSucceeded):
            self._on_connected(event)
        elif isinstance(event, ConnectFailed):
            logger.warning("connect to %s failed: %s", event.endpoint, event.reason)
            self.counters["connect_failures"] += 1
            self.session, command = on_connect_failed(self.session, event, self.rng.random())
            self._connect(command)
        elif isinstance(event, ConnectionLost):
            logger.warning("connection lost: %s", event.reason)
            self.counters["connection_lost"] += 1
            self._requeue_inflight()
            self.session, command = on_connection_lost(self.session, event, self.rng.random())
            self._connect(command)
        elif isinstance(event, PublishAcked):
            self._on_puback(event)
        elif isinstance(event, MessageReceived):
            self._on_message(event)
        elif isinstance(event, Subscribed):
            if not event.granted:
                logger.error("command subscription refused: %s", event.reason_codes)
        elif isinstance(event, Tick):
            self._on_tick(event.at)
        elif isinstance(event, Stop):
            self._stop()
        else:
            self._on_device_input(event)

    # -- connection ----------------------------------------------------------------

    def _connect(self, command: Connect) -> None:
        counter = self.state.session_counter + 1
        self._set_state(AgentState(self.state.policy_version, self.state.audio_on, counter))
        will_payload = self._availability_payload("offline", counter)
        self.transport.connect(command, Will(self.topics.of(Channel.AVAILABILITY), will_payload))

    def _availability_payload(self, state: str, session: int) -> bytes:
        """Availability goes through the gate too (row 6: online/offline status)."""
        decision = self._decide(
            Candidate(Purpose.DEVICE_STATUS, {"online_status": state}, self.clock.now())
        )
        kept = decision.kept.get(produce.field("online_status"))
        return produce.availability_payload(kept if isinstance(kept, str) else "unknown", session)

    def _on_connected(self, event: ConnectSucceeded) -> None:
        self.session = on_connected(self.session, event)
        logger.info("connected to %s over MQTT %s", event.endpoint, event.protocol.value)
        self._audit(AuditEvent.CONNECTED, detail=f"{event.endpoint} MQTT {event.protocol.value}")
        try:
            self.transport.subscribe(self.topics.of(Channel.COMMAND), qos=1)
            payload = self._availability_payload("online", self.state.session_counter)
            self._publish_now(self.topics.of(Channel.AVAILABILITY), payload, Purpose.DEVICE_STATUS)
            self._publish_birth()
        except TransportError as err:
            logger.warning("connection went away during the birth: %s", err)
            return
        self._pump()

    def _publish_now(self, topic: str, payload: bytes, purpose: Purpose) -> None:
        """Retained status messages that must not be queued across sessions."""
        now = self.clock.now()
        item = produce.status_release(topic, payload, purpose, now, self.manifest.version)
        mid = self.transport.publish(item.topic, item.payload, qos=1, retain=True)
        self._audit_release(AuditEvent.SENT, item, mid=mid)

    def _publish_birth(self) -> None:
        now = self.clock.now()
        candidate = produce.birth_candidate(
            now,
            self.manifest,
            self.consent_snapshot(),
            self.audio_on,
            __version__,
            self.transport.protocol.value,
            self.state.session_counter,
            self.topics,
        )
        decision = self._decide(candidate)
        item = self._release(decision, Channel.BIRTH, Priority.STATUS, retain=True)
        mid = self.transport.publish(item.topic, item.payload, qos=1, retain=True)
        self._audit_release(AuditEvent.SENT, item, mid=mid)

    # -- outbox ----------------------------------------------------------------------

    def _pump(self) -> None:
        if not self.session.connected:
            return
        room = self.config.broker.max_inflight - len(self.inflight)
        if room <= 0:
            return
        batch, dropped = self.outbox.next_batch(self.clock.now(), room)
        self._record_drops(dropped)
        sent: list[tuple[str, int]] = []
        for item in batch:
            try:
                mid = self.transport.publish(item.topic, item.payload, item.qos, item.retain)
            except TransportError as err:
                logger.warning("publish failed, item stays queued: %s", err)
                break
            self.inflight[mid] = item
            sent.append((item.record_id, mid))
        if sent:
            self.outbox.mark_inflight_many(sent)

    def _on_puback(self, event: PublishAcked) -> None:
        item = self.inflight.pop(event.mid, None)
        if item is None:
            return  # a direct (status/birth) publish, already audited
        self.outbox.ack_many([item.record_id])
        if event.refused:
            self.counters["refused_by_broker"] += 1
            self.outbox.count("refused_by_broker")
            self._audit_item(
                AuditEvent.REFUSED_BY_BROKER,
                item,
                reason_code=event.reason_code,
                detail=event.reason,
            )
        else:
            self._audit_item(AuditEvent.ACKED, item, reason_code=event.reason_code)
        self._pump()

    def _requeue_inflight(self) -> None:
        self.inflight.clear()
        self.outbox.requeue_inflight()

    def _record_drops(self, dropped: list[Dropped]) -> None:
        for drop in dropped:
            self.counters[f"dropped_{drop.reason}"] += 1
            self.audit.append(
                event=AuditEvent.EXPIRED if drop.reason == "expired" else AuditEvent.DROPPED,
                time=self.clock.now().isoformat(),
                topic=drop.topic,
                size=drop.size,
                record_id=drop.record_id,
                policy_version=drop.policy_version,
                clause=drop.clause,
                detail=str(drop.reason),
            )

    def _on_tick(self, now: datetime) -> None:
        self._record_drops(self.outbox.expire(now))
        self._pump()

    # -- the gate ----------------------------------------------------------------------

    def _decide(self, candidate: Candidate) -> Decision:
        return decide(candidate, self.manifest, self.consent, self.audio_on, self.clock.now())

    def _release(
        self, decision: Decision, channel: Channel, priority: Priority, retain: bool = False
    ) -> Release:
        return release(
            record_id=uuid.uuid4().hex,
            topic=self.topics.of(channel),
            purpose=decision.purpose,
            priority=priority,
            created_at=self.clock.now(),
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
        extra_counts: Mapping[str, int] | None = None,
    ) -> Release | None:
        """Gate one candidate and queue what it keeps; audit what it removes."""
        decision = self._decide(candidate)
        counts = {f"removed_{reason}": 1 for reason in decision.removed.values()}
        for reason in decision.removed.values():
            self.counters[f"removed_{reason}"] += 1
        if extra_counts:
            counts.update(extra_counts)
        if not decision.allowed:
            self.counters["denied"] += 1
            self._audit(
                AuditEvent.DENIED,
                topic=self.topics.of(channel),
                counts=counts,
                detail=f"{candidate.purpose.value}: nothing left after the gate",
            )
            return None
        item = self._release(decision, channel, priority)
        dropped = self.outbox.enqueue(produce.outbox_item(item))
        self._audit_release(AuditEvent.QUEUED, item, counts=counts)
        self._record_drops(dropped)
        self._pump()
        return item

    # -- device inputs -------------------------------------------------------------------

    def _on_device_input(self, event: DeviceInput) -> None:
        if isinstance(event, ButtonPressed):
            self._withdraw(None, source="device button", command_id="")
            return
        if isinstance(event, AudioCaptured):
            if not self.audio_on:
                # The capture side must not even produce these; if it does, drop and count.
                self.counters["audio_refused_at_source"] += 1
                self._audit(AuditEvent.DENIED, detail="audio samples while audio is off: discarded")
                return
            self._audio_buffer.append(event)
            self._audio_buffer = self._audio_buffer[-64:]
            return
        for candidate, channel, priority, counts in produce.candidates(
            event, self.config, self._take_audio(), self.audio_on, self.clock.monotonic
        ):
            self.submit(candidate, channel, priority, counts)
            for name, value in counts.items():
                self.counters[name] += value

    def _take_audio(self) -> list[AudioCaptured]:
        taken, self._audio_buffer = self._audio_buffer, []
        return taken

    # -- commands ------------------------------------------------------------------------

    def _on_message(self, event: MessageReceived) -> None:
        if event.topic != self.topics.of(Channel.COMMAND):
            return
        command = parse_command(event.payload)
        if isinstance(command, Refused):
            self._command_result(command.id, False, command.reason)
        elif isinstance(command, GrantConsent):
            self._grant(command)
        elif isinstance(command, WithdrawConsent):
            self._withdraw(command.purpose, source="command", command_id=command.id)
        elif isinstance(command, SetAudio):
            self._set_audio(command)
        elif isinstance(command, AcceptPolicy):
            self._accept_policy(command)
        elif isinstance(command, RequestStatus):
            self._command_result(command.id, True, "status", self._status())

    def _status(self) -> dict[str, object]:
        return {
            "policy_version": self.manifest.version,
            "audio_on": self.audio_on,
            "consent": self.consent_snapshot(),
            "queued": self.outbox.pending_count(),
            "counters": dict(self.outbox.counters()),
        }

    def _grant(self, command: GrantConsent) -> None:
        if self.app_public_key is None:
            self._command_result(command.id, False, "no app key was provisioned at enrolment")
            return
        try:
            receipt = parse_receipt(command.receipt)
        except InputError as err:
            self._command_result(command.id, False, str(err))
            return
        result = grant(
            self.consent,
            receipt,
            self.app_public_key,  # type: ignore[arg-type]
            self.config.device.serial,
            self.manifest,
            self.clock.now(),
            produce.receipt_max_age(self.config),
        )
        if result.accepted:
            self.consent = result.state
            save_consent(self._consent_path, self.consent)
            self._audit(AuditEvent.CONSENT_GRANTED, detail=result.reason)
            self._publish_birth_if_connected()
        self._command_result(command.id, result.accepted, result.reason)

    def _withdraw(self, purpose: Purpose | None, source: str, command_id: str) -> None:
        purposes = [purpose] if purpose is not None else list(self.manifest.consent_purposes())
        changed_any = False
        for one in purposes:
            self.consent, changed = withdraw(self.consent, one, self.clock.now(), source)
            changed_any = changed_any or changed
            # Rule 4: stop at once: purge unsent items, clear retained topics, record it.
            self._requeue_inflight_of(one)
            self._record_drops(self.outbox.purge_purpose(one))
            for channel in RETAINED_BY_PURPOSE.get(one, ()):
                self._clear_retained(channel, one)
            self._audit(AuditEvent.CONSENT_WITHDRAWN, detail=f"{one.value} by {source}")
        save_consent(self._consent_path, self.consent)
        self._publish_birth_if_connected()
        if command_id or source == "command":
            label = purpose.value if purpose else "all"
            self._command_result(
                command_id, True, f"withdrawn: {label}" if changed_any else "already off"
            )

    def _requeue_inflight_of(self, purpose: Purpose) -> None:
        for mid, item in list(self.inflight.items()):
            if item.purpose is purpose:
                del self.inflight[mid]

    def _clear_retained(self, channel: Channel, purpose: Purpose) -> None:
        item = clear_retained(
            record_id=uuid.uuid4().hex,
            topic=self.topics.of(channel),
            purpose=purpose,
            created_at=self.clock.now(),
            reason="consent withdrawn",
        )
        self.outbox.enqueue(produce.outbox_item(item))
        self._audit_release(AuditEvent.QUEUED, item, detail="clear retained topic")

    def _set_audio(self, command: SetAudio) -> None:
        if command.on and not self.manifest.discloses(Purpose.CLOUD_STORAGE):
            pass
        if command.on and not audio_policy.may_open_microphone(self.manifest, True):
            self._command_result(
                command.id, False, f"policy {self.manifest.version} discloses no audio collection"
            )
            return
        self._set_state(
            AgentState(self.state.policy_version, command.on, self.state.session_counter)
        )
        if not command.on:
            self._audio_buffer.clear()
        self._audit(AuditEvent.AUDIO_TOGGLED, detail="on" if command.on else "off")
        self._publish_birth_if_connected()
        self._command_result(command.id, True, "audio on" if command.on else "audio off")

    def _accept_policy(self, command: AcceptPolicy) -> None:
        if command.version not in list_versions():
            self._command_result(
                command.id,
                False,
                f"unknown policy version {command.version!r} (known: {', '.join(list_versions())})",
            )
            return
        try:
            new = load_manifest(command.version)
        except PolicyError as err:
            self._command_result(command.id, False, str(err))
            return
        old = self.manifest
        # Rule 6: the new version takes effect before the next message leaves.
        self.consent = switch_version(self.consent, old, new)
        self.manifest = new
        self._set_state(AgentState(new.version, self.state.audio_on, self.state.session_counter))
        save_consent(self._consent_path, self.consent)
        for purpose in Purpose:
            if not new.discloses(purpose) or (
                purpose in new.consent_purposes() and not is_granted(self.consent, purpose, new)
            ):
                self._record_drops(self.outbox.purge_purpose(purpose))
        self._audit(AuditEvent.POLICY_SWITCHED, detail=f"{old.version} -> {new.version}")
        self._publish_birth_if_connected()
        self._command_result(command.id, True, f"accepted {new.version}")

    def _publish_birth_if_connected(self) -> None:
        if self.session.connected:
            try:
                self._publish_birth()
            except TransportError as err:
                logger.warning("birth not published: %s", err)

    def _command_result(
        self, command_id: str, ok: bool, reason: str, status: Mapping[str, object] | None = None
    ) -> None:
        candidate = produce.command_result_candidate(
            self.clock.now(), command_id, ok, reason, status
        )
        self.submit(candidate, Channel.COMMAND_RESULT, Priority.STATUS)

    # -- stop ------------------------------------------------------------------------------

    def _stop(self) -> None:
        self.stopped = True
        if self.session.connected:
            try:
                payload = self._availability_payload("stopped", self.state.session_counter)
                self._publish_now(
                    self.topics.of(Channel.AVAILABILITY), payload, Purpose.DEVICE_STATUS
                )
            except TransportError as err:
                logger.warning("could not publish 'stopped': %s", err)
            self.transport.disconnect()
        self.transport.close()
        self.audit.close()
        self.outbox.close()

    # -- helpers ---------------------------------------------------------------------------

    def _set_state(self, state: AgentState) -> None:
        self.state = state
        save_agent_state(self._state_path, state)

    def _audit(self, event: AuditEvent, **fields: object) -> None:
        self.audit.append(
            event=event,
            time=self.clock.now().isoformat(),
            policy_version=self.manifest.version,
            consent=self.consent_snapshot(),
            **fields,
        )

    def _audit_release(self, event: AuditEvent, item: Release, **fields: object) -> None:
        self.audit.append(
            event=event,
            time=self.clock.now().isoformat(),
            topic=item.topic,
            payload_sha256=produce.sha256(item.payload),
            size=len(item.payload),
            qos=item.qos,
            record_id=item.record_id,
            policy_version=item.policy_version,
            clause=item.clause,
            consent=self.consent_snapshot(),
            **fields,
        )

    def _audit_item(self, event: AuditEvent, item: OutboxItem, **fields: object) -> None:
        self._audit_release(event, produce.release_of(item), **fields)


def default_state_dir(config: AgentConfig) -> Path:
    return config.device.state_dir


__all__ = ["Agent", "AgentEvent", "Stop", "Tick", "rehydrate"]
