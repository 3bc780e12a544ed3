"""Shell: the agent's main loop, the only place threads meet (one queue, one consumer).

Theory of operation. Everything that happens arrives on one ``queue.Queue``: device
inputs (camera, microphone, AI chip, button), transport events (connected, PUBACK,
command received) and ticks. The loop takes what is there (up to ``BATCH``), handles it,
then commits: new items are queued in one outbox transaction, PUBACKs are acknowledged
in one, the audit trail is fsynced once, and the outbox is pumped. So each state change
is durable before anything depending on it happens, and bursts cost one fsync, not N.

1. A device input becomes candidate messages (``edge.produce``), each decided by the
   policy gate with the device's state *as it is now* (``edge.shell.gatekeeper``); what
   the gate keeps is queued (``edge.shell.writer``), what it removes is audited.
2. When connected, queued items go to the transport (``edge.shell.link``); an item is
   deleted only on its PUBACK; on connection loss in-flight items return to pending.
3. Commands are parsed at the boundary; what they mean is decided by ``edge.control`` as
   a new state and a list of effects, carried out in order by ``edge.shell.executor``,
   which holds the device state and is the one place a purpose is stopped.

Errors by who must act (``step``): a sender's mistake refuses that one event (counted,
audited) and the batch goes on; a transport error is retried by the session; a store
error that could lose data stops the agent; anything else is counted and logged.
"""

from __future__ import annotations

import logging
import queue
import random
from collections import Counter
from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge import __version__, control, produce
from edge.audit import AuditEvent
from edge.commands import AcceptPolicy, Refused, parse_command
from edge.config import AgentConfig
from edge.errors import InputError, PolicyError, StoreError, StoreFullError, TransportError
from edge.inputs import AudioCaptured, ButtonPressed, DeviceInput, StatusDue, Stop, Tick
from edge.media.audio import validate_audio
from edge.model import Count, Priority, Purpose
from edge.policy.catalogue import FieldName
from edge.policy.gate import Candidate
from edge.policy.manifest import Manifest
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
    start,
)
from edge.session import Protocol as MqttProtocol
from edge.shell.audit_log import AuditLog
from edge.shell.clock import Clock
from edge.shell.device_files import DeviceFiles, open_outbox
from edge.shell.executor import Executor
from edge.shell.gatekeeper import Gatekeeper
from edge.shell.link import Link, Transport, TransportFactory
from edge.shell.recorder import Recorder
from edge.shell.seal_key import Checkpointer, load_seal_key, load_signing_key
from edge.shell.shipped import load_manifest, manifest_or_reason
from edge.shell.state_file import AgentState
from edge.shell.writer import OutboxWriter
from edge.topics import Channel, Topics

__all__ = ["Agent", "Stop", "Tick", "Transport", "TransportFactory"]

logger = logging.getLogger(__name__)

BATCH = 256
EXPIRE_EVERY_S = 5.0
COUNTERS_EVERY_S = 300.0


AgentEvent = TransportEvent | DeviceInput | Tick | Stop


class Agent:
    """One device's agent. Build it, then ``run()`` (blocking) or ``step()`` by hand."""

    def __init__(
        self,
        config: AgentConfig,
        clock: Clock,
        transport_factory: TransportFactory,
        app_public_key: Ed25519PublicKey | None = None,
        rng: random.Random | None = None,
        synchronous: str = "FULL",
        status_every_s: float | None = None,
    ) -> None:
        """``status_every_s``: the loop makes the row-6 status report itself, at start and
        then this often (the daemon, whatever its camera source); None: the caller puts
        ``StatusDue`` inputs (the simulator, whose scenarios say when)."""
        self.config = config
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - backoff jitter, not cryptography
        self.events: queue.Queue[AgentEvent] = queue.Queue()
        self._audio: list[AudioCaptured] = []  # held for the next clip, only while audio is on
        serial = config.device.serial
        self.topics = topics = Topics(serial, config.broker.topic_prefix)
        self.counters = counters = Counter[str]()
        state_dir = config.device.state_dir
        self.files = files = DeviceFiles(state_dir, config.policy.version, counters)
        device = control.DeviceState(
            load_manifest(self.state.policy_version),
            self.files.consent_at_start,
            self.state.audio_on,
            config.audio.enabled is False,
        )
        max_age = timedelta(seconds=config.policy.receipt_max_age_s)
        self.rules = control.GrantRules(app_public_key, serial, max_age)
        aud = config.audit
        self.audit = AuditLog(
            state_dir / "audit.jsonl",
            fsync_every=1 << 30,
            segment_bytes=aud.segment_bytes,
            max_bytes=aud.max_bytes,
            keep=max(timedelta(days=aud.keep_days), device.manifest.longest_retention),
            sealer=load_seal_key(state_dir, aud.seal_every_records, aud.seal_every_s),
        )
        signing = load_signing_key(state_dir)
        every = (aud.checkpoint_every_records, aud.checkpoint_every_s)
        self.checkpoints = Checkpointer(signing, serial, *every) if signing else None
        self.recorder = recorder = Recorder(self.audit, clock, counters, self._audit_context)
        self.outbox = outbox = open_outbox(config, recorder, synchronous)
        broker, inflight = config.broker, config.broker.max_inflight
        session, self._first_connect = start(
            SessionConfig(
                broker.endpoints, broker.backoff_base_s, broker.backoff_max_s, broker.protocol
            )
        )
        self.transport = transport = transport_factory(serial, self.events)  # type: ignore[arg-type]
        mqtt5 = lambda: self.transport.protocol is MqttProtocol.MQTT5  # noqa: E731
        self.writer = writer = OutboxWriter(
            outbox, recorder, counters, state_dir, config.outbox.max_queue_bytes, mqtt5
        )
        self.gate = gate = Gatekeeper(
            lambda: self.device, topics, clock, counters, recorder, writer, self.consent_snapshot
        )
        self.link = link = Link(
            session, transport, outbox, writer, gate, recorder, topics, clock, counters, inflight
        )
        self.executor = Executor(
            device, files, link, outbox, writer, gate, recorder, topics, clock, self._audio.clear
        )
        self.stopped = False
        self._last_expire = self._last_counters = self._next_status = clock.monotonic()
        self._status_every_s = status_every_s
        self._status_stored = False
        recorder.agent(
            AuditEvent.STARTED, detail=f"agent {__version__}, policy {device.manifest.version}"
        )

    # -- queries -----------------------------------------------------------------------

    @property
    def state(self) -> AgentState:
        """The accepted version, the audio toggle and the session counter, as on disk."""
        return self.files.state

    @property
    def device(self) -> control.DeviceState:
        """Accepted version, consents, audio toggle: held by the executor, which alone
        changes them."""
        return self.executor.device

    @property
    def manifest(self) -> Manifest:
        return self.device.manifest

    @property
    def audio_on(self) -> bool:
        """The audio toggle as the capture side must obey it (design.md rule 5)."""
        return self.device.audio_on

    @property
    def session(self) -> SessionState:
        return self.link.session

    @property
    def ready(self) -> bool:
        """Up, for a service manager: connected, or a status report is durably queued (a
        camera that boots without network is working: it queues what it will send)."""
        return self.link.connected or self._status_stored

    def is_idle(self) -> bool:
        """Connected, every event handled, nothing queued or in flight (tests, benchmarks)."""
        return (
            self.link.connected
            and self.events.unfinished_tasks == 0  # taken events count until committed
            and self.writer.idle
            and not self.link.inflight
            and self.outbox.pending_count() == 0
        )

    def consent_snapshot(self) -> dict[str, str]:
        return self.executor.consent_snapshot()

    def _audit_context(self) -> tuple[str, dict[str, str]]:
        return self.manifest.version, self.consent_snapshot()

    def status(self) -> dict[str, object]:
        return self.executor.status()

    # -- the loop ----------------------------------------------------------------------

    def start(self) -> None:
        """Open the first connection (the outcome arrives as an event)."""
        self._connect(self._first_connect)

    def run(self, tick_s: float = 1.0) -> None:
        """Connect and handle events until a ``Stop`` arrives."""
        self.start()
        while not self.stopped:
            self.step(tick_s)

    def step(self, wait_s: float) -> int:
        """Wait up to ``wait_s`` for events, handle all that are there, commit. Returns how many."""
        try:
            batch: list[AgentEvent] = [self.events.get(timeout=wait_s)]
        except queue.Empty:
            batch = []
        while len(batch) < BATCH:
            try:
                batch.append(self.events.get_nowait())
            except queue.Empty:
                break
        for event in batch:
            try:
                self.handle(event)
            except StoreError:
                raise  # data could be lost: stop, leave the queue file as it is
            except (InputError, PolicyError) as err:
                # The sender's mistake (a frame of the wrong shape, a clip whose frames
                # differ in size, a malformed audio buffer): this event only. What it had
                # already produced (an alarm event before its clip failed) stays queued.
                self.counters[Count.INPUTS_REFUSED] += 1
                logger.warning("%s refused: %s", type(event).__name__, err)
                self.recorder.agent(
                    AuditEvent.INPUT_REFUSED, detail=f"{type(event).__name__}: {err}"
                )
            except TransportError as err:
                # The session retries the connection; the items stay queued.
                self.counters[Count.TRANSPORT_ERRORS] += 1
                logger.warning("%s: transport error, retried: %s", type(event).__name__, err)
            except Exception:
                self.counters[Count.INTERNAL_ERRORS] += 1
                logger.exception("event %s failed; counted, continuing", type(event).__name__)
        if not self.stopped:
            self._housekeeping()
            self.commit()
        for _ in batch:
            self.events.task_done()  # is_idle(): handled and committed, not merely taken
        return len(batch)

    def commit(self, final: bool = False) -> None:
        """Make the batch durable (``OutboxWriter.commit``: a full disk waits in memory),
        fsync the audit trail, pump the outbox. A checkpoint of the trail's head is queued
        first when one is due (``final``: at a clean stop, always)."""
        if self.checkpoints and (
            due := self.checkpoints.due(self.audit.last, self.clock.now(), final)
        ):
            self.gate.submit(due, Channel.AUDIT_CHECKPOINT, Priority.STATUS)
        self.writer.commit()
        if not self._status_stored:  # once: READY for a service manager (``ready``)
            telemetry = self.topics.of(Channel.TELEMETRY)
            self._status_stored = any(r.topic == telemetry for r in self.writer.stored)
        self.audit.sync()
        try:
            self.link.pump(self.audio_on)
        except StoreFullError as err:
            self.counters[Count.STORE_FULL] += 1
            logger.error("outbox: %s; sending paused until there is room", err)

    def handle(self, event: AgentEvent) -> None:
        """Handle one event (no commit: ``step`` commits after each batch)."""
        if isinstance(event, PublishAcked):
            self.link.on_puback(event)
        elif isinstance(event, ConnectSucceeded):
            try:
                self.link.on_connected(event, self.state.session_counter, self.executor.birth())
            except TransportError as err:
                logger.warning("the connection went away during the birth: %s", err)
        elif isinstance(event, ConnectFailed):
            self._connect(self.link.on_failed(event, self.rng.random()))
        elif isinstance(event, ConnectionLost):
            self._connect(self.link.on_lost(event, self.rng.random()))
        elif isinstance(event, MessageReceived):
            self._on_message(event)
        elif isinstance(event, Subscribed):
            self.link.on_subscribed(event)
        elif isinstance(event, Tick):
            pass  # housekeeping runs after every batch
        elif isinstance(event, Stop):
            self._stop()
        else:
            self._on_device_input(event)

    def _housekeeping(self) -> None:
        self.files.retry(self.device.consent)
        try:
            self.link.retry_subscription()
        except TransportError as err:
            logger.warning("resubscribe failed: %s", err)
        mono = self.clock.monotonic()
        if self._status_every_s is not None and mono >= self._next_status:
            self._next_status = mono + self._status_every_s
            self._on_device_input(StatusDue(self.clock.now()))
        if mono - self._last_expire >= EXPIRE_EVERY_S:
            self._last_expire = mono
            self.recorder.drops(self.outbox.expire(self.clock.now()))
        if mono - self._last_counters >= COUNTERS_EVERY_S:
            self._last_counters = mono
            self.report_counters()

    def report_counters(self) -> None:
        """Drops by reason are telemetry too (style guide §4.6): queue them."""
        self.counters[Count.AUDIT_SEGMENTS_DELETED] = self.audit.deleted_segments
        self.counters[Count.AUDIT_OVER_CAP] = int(self.audit.over_cap)
        counts = {**self.outbox.counters(), **{k: v for k, v in self.counters.items() if v}}
        candidate = Candidate(Purpose.AGENT, {FieldName.DROP_COUNTERS: counts}, self.clock.now())
        self.gate.submit(candidate, Channel.COUNTERS, Priority.DIAGNOSTICS)

    # -- connection --------------------------------------------------------------------

    def _connect(self, command: Connect) -> None:
        counter = self.state.session_counter + 1
        self.files.save_state(AgentState(self.state.policy_version, self.state.audio_on, counter))
        self.link.connect(command, counter)

    # -- device inputs -----------------------------------------------------------------

    def _on_device_input(self, event: DeviceInput) -> None:
        if isinstance(event, ButtonPressed):
            now = self.clock.now()
            self.executor.apply(
                control.withdraw_consent(self.device, None, "device button", None, now)
            )
            return
        if isinstance(event, AudioCaptured):
            if not self.audio_on:
                # The capture side must not even produce these; if it does, discard and count.
                self.counters[Count.AUDIO_REFUSED_AT_SOURCE] += 1
                self.recorder.agent(
                    AuditEvent.DENIED, detail="microphone samples while audio is off: discarded"
                )
                return
            validate_audio(event.samples, event.sample_rate_hz)  # refused here, not at the clip
            self._audio.append(event)
            del self._audio[:-16]  # the last 16 buffers: what one clip can carry
            return
        audio = list(self._audio) if self.audio_on else []
        self._audio.clear()
        for candidate, channel, priority, counts in produce.candidates(
            event, self.config, audio, self.audio_on, self.clock.monotonic
        ):
            self.gate.submit(candidate, channel, priority, counts)

    # -- commands: the core decides (edge.control), the executor carries it out ---------

    def _on_message(self, event: MessageReceived) -> None:
        if event.topic != self.topics.of(Channel.COMMAND):
            return
        command = parse_command(event.payload)
        name = type(command).__name__
        self.recorder.agent(AuditEvent.COMMAND, size=len(event.payload), detail=name)
        if isinstance(command, Refused):
            self.counters[Count.COMMANDS_REFUSED] += 1  # the sender's mistake: refused, answered
        new = manifest_or_reason(command.version) if isinstance(command, AcceptPolicy) else None
        self.executor.apply(control.decide(self.device, command, self.clock.now(), self.rules, new))

    # -- stop ------------------------------------------------------------------------------

    def _stop(self) -> None:
        self.commit(final=True)
        self.stopped = True
        self.link.say_stopped(self.state.session_counter)
        self.recorder.agent(AuditEvent.STOPPED)
        self.audit.close()
        self.outbox.close()

    def kill(self) -> None:
        """Die without goodbye (a power cut): no flush beyond the last commit, the broker
        sends the Will."""
        self.stopped = True
        self.transport.drop()
        self.transport.close(timeout_s=1)
        self.audit.abandon()
        self.outbox.close()
