"""Shell: the agent's side of the connection: the session's commands carried out on the
transport, the retained availability (and its Will) and birth sent at each connection,
the command subscription (retried when a clustered broker does not answer), and the pump
that hands queued items to the transport, at most ``max_inflight`` at a time.

What leaves here is a ``Sendable`` (``edge.release``): an item the gate released, or an
availability the gate kept. Rule 5 is applied once more at send time: a clip queued
while audio was on leaves without its audio track if audio has been turned off since,
and one that cannot be checked does not leave at all.
"""

from __future__ import annotations

import logging
import queue
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from edge import produce
from edge.audit import AuditEvent
from edge.errors import TransportError
from edge.model import Count, Priority, Purpose
from edge.outbox import DropReason, Outbox, OutboxItem
from edge.policy.catalogue import FieldName
from edge.policy.gate import Candidate
from edge.release import Sendable, availability, sendable
from edge.session import (
    Connect,
    ConnectFailed,
    ConnectionLost,
    ConnectSucceeded,
    PublishAcked,
    SessionState,
    Subscribed,
    TransportEvent,
    on_connect_failed,
    on_connected,
    on_connection_lost,
)
from edge.session import Protocol as MqttProtocol
from edge.shell.clock import Clock
from edge.shell.gatekeeper import Gatekeeper
from edge.shell.recorder import Recorder
from edge.shell.writer import OutboxWriter
from edge.topics import Channel, Topics

logger = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT_S = 5.0
SUBSCRIBE_ATTEMPTS = 5


class Transport(Protocol):
    """What the agent needs of a transport: ``MqttTransport``, or the simulator's
    in-memory link for deterministic runs without sockets. It publishes a ``Sendable``
    and nothing else."""

    @property
    def protocol(self) -> MqttProtocol: ...

    def connect(self, command: Connect, will: Sendable | None) -> None: ...

    def publish(self, message: Sendable) -> int: ...

    def subscribe(self, topic: str, qos: int = 1) -> int: ...

    def disconnect(self) -> None: ...

    def drop(self) -> None: ...

    def close(self, timeout_s: float = 5.0) -> None: ...


TransportFactory = Callable[[str, "queue.Queue[TransportEvent]"], Transport]


class Link:
    """The session state machine driven on a transport, and the send side of the outbox."""

    def __init__(
        self,
        session: SessionState,
        transport: Transport,
        outbox: Outbox,
        writer: OutboxWriter,
        gate: Gatekeeper,
        recorder: Recorder,
        topics: Topics,
        clock: Clock,
        counters: Counter[str],
        max_inflight: int,
    ) -> None:
        self.session = session
        self.transport = transport
        self.inflight: dict[int, OutboxItem] = {}
        self._outbox = outbox
        self._writer = writer
        self._gate = gate
        self._recorder = recorder
        self._topics = topics
        self._clock = clock
        self._counters = counters
        self._max_inflight = max_inflight
        self._subscribe_sent_at: float | None = None
        self._subscribe_attempts = 0

    @property
    def connected(self) -> bool:
        return self.session.connected

    # -- connection ------------------------------------------------------------------

    def connect(self, command: Connect, session_counter: int) -> None:
        offline = self.availability("offline", session_counter)
        self.transport.connect(command, None if offline is None else offline[0])

    def availability(self, state: str, session: int) -> tuple[Sendable, str] | None:
        """Availability goes through the gate too (row 6: online/offline status): where the
        gate removes ``online_status``, no availability leaves at all (no Will either)."""
        decision = self._gate.decide(
            Candidate(Purpose.DEVICE_STATUS, {FieldName.ONLINE_STATUS: state}, self._clock.now())
        )
        found = availability(self._topics.of(Channel.AVAILABILITY), decision, session)
        if found is None:
            self._counters[Count.AVAILABILITY_DENIED] += 1
        return found

    def say_stopped(self, session: int) -> None:
        """A clean stop: the retained availability says ``stopped`` (where the gate lets
        it), then DISCONNECT (so the broker does not send the Will), then close."""
        if self.connected:
            try:
                stopped = self.availability("stopped", session)
                if stopped is not None:
                    self.publish_retained(*stopped)
            except TransportError as err:
                logger.warning("could not publish 'stopped': %s", err)
            self.transport.disconnect()
        self.transport.close()

    def on_failed(self, event: ConnectFailed, jitter: float) -> Connect:
        logger.warning("connect to %s failed: %s", event.endpoint, event.reason)
        self._counters[Count.CONNECT_FAILURES] += 1
        self.session, command = on_connect_failed(self.session, event, jitter)
        return command

    def on_lost(self, event: ConnectionLost, jitter: float) -> Connect:
        logger.warning("connection lost: %s", event.reason)
        self._counters[Count.CONNECTION_LOST] += 1
        self.requeue_inflight()
        self.session, command = on_connection_lost(self.session, event, jitter)
        return command

    def on_connected(self, event: ConnectSucceeded, session_counter: int, birth: Candidate) -> None:
        self.session = on_connected(self.session, event)
        logger.info("connected to %s over MQTT %s", event.endpoint, event.protocol.value)
        self._recorder.agent(
            AuditEvent.CONNECTED, detail=f"{event.endpoint} MQTT {event.protocol.value}"
        )
        self._subscribe_attempts = 0
        self.subscribe_commands()
        online = self.availability("online", session_counter)
        if online is not None:
            self.publish_retained(*online)
        self.publish_birth(birth)

    def on_subscribed(self, event: Subscribed) -> None:
        self._subscribe_sent_at = None
        if not event.granted:
            logger.error("command subscription refused: %s", event.reason_codes)

    def subscribe_commands(self) -> None:
        self._subscribe_attempts += 1
        self._subscribe_sent_at = self._clock.monotonic()
        self.transport.subscribe(self._topics.of(Channel.COMMAND), qos=1)

    def retry_subscription(self) -> None:
        """A clustered broker may not answer a new QoS 1 subscription while a node is down
        (NATS: ~4 s after it is back): retry a bounded number of times."""
        sent = self._subscribe_sent_at
        waited = self._clock.monotonic() - (sent or 0.0)
        if sent is None or not self.connected or waited <= SUBSCRIBE_TIMEOUT_S:
            return
        if self._subscribe_attempts >= SUBSCRIBE_ATTEMPTS:
            return
        logger.warning("no SUBACK for the command topic after %.0f s: retrying", waited)
        self.subscribe_commands()

    def publish_retained(self, message: Sendable, clause: str) -> None:
        """Retained status: sent at once on each connection, never queued across sessions."""
        mid = self.transport.publish(message)
        self._recorder.retained_sent(
            message.topic, message.payload, clause, detail=f"retained, mid {mid}"
        )

    def publish_birth(self, candidate: Candidate) -> None:
        decision = self._gate.decide(candidate)
        item = self._gate.release(decision, Channel.BIRTH, Priority.STATUS, retain=True)
        self.publish_retained(sendable(item), item.clause)

    # -- the outbox's send side --------------------------------------------------------

    def pump(self, audio_on: bool) -> None:
        if not self.connected:
            return
        room = self._max_inflight - len(self.inflight)
        if room <= 0:
            return
        batch, drops = self._outbox.next_batch(self._clock.now(), room)
        self._recorder.drops(drops)
        checked: list[OutboxItem] = []
        refused: list[str] = []
        for queued in batch:
            item = self._audio_checked(queued, audio_on)
            if item is None:
                refused.append(queued.record_id)
            else:
                checked.append(item)
        if refused:
            self._recorder.drops(self._outbox.drop(refused, DropReason.DENIED_AT_SEND))
        for position, item in enumerate(checked):
            try:
                mid = self.transport.publish(sendable(item))
            except TransportError as err:
                logger.warning(
                    "publish failed, %d item(s) stay queued: %s", len(checked) - position, err
                )
                self.requeue_inflight()
                return
            self.inflight[mid] = item

    def _audio_checked(self, item: OutboxItem, audio_on: bool) -> OutboxItem | None:
        """Rule 5 at send time (``produce.clip_payload_for_sending``); None: the caller
        drops the item."""
        if item.topic != self._topics.of(Channel.CLIP) or audio_on:
            return item
        payload, stripped = produce.clip_payload_for_sending(item.payload, audio_allowed=False)
        if payload is None:
            self._counters[Count.CLIPS_REFUSED] += 1
            self._recorder.message(
                AuditEvent.DENIED, item, detail="audio is off and the clip cannot be checked"
            )
            return None
        if not stripped:
            return item
        self._counters[Count.AUDIO_TRACKS_STRIPPED] += 1
        self._recorder.message(
            AuditEvent.DENIED, item, detail="audio turned off: audio track stripped before sending"
        )
        return replace(item, payload=payload)

    def on_puback(self, event: PublishAcked) -> None:
        item = self.inflight.pop(event.mid, None)
        if item is None:
            return  # a direct (status/birth) publish, or an item purged meanwhile
        if not event.refused:
            self._writer.ack(item, event)
            return
        self._counters[Count.REFUSED_BY_BROKER] += 1
        if self._outbox.refused([item.record_id]):
            self._recorder.message(
                AuditEvent.REFUSED_BY_BROKER,
                item,
                reason_code=event.reason_code,
                detail=event.reason,
            )

    def forget(self, purpose: Purpose) -> None:
        """In-flight items of a purpose that stopped: their PUBACKs will find nothing."""
        for mid, item in list(self.inflight.items()):
            if item.purpose is purpose:
                del self.inflight[mid]

    def requeue_inflight(self) -> None:
        self.inflight.clear()
        self._outbox.requeue_inflight()
