"""Shell: the agent's main loop, where sensors, the policy gate, the outbox, the audit trail
and the transport meet. It is the only place threads meet (one queue, one consumer).

Theory of operation. Everything that happens arrives on one ``queue.Queue``: device
inputs (camera, microphone, AI chip, button), transport events (connected, PUBACK,
command received) and ticks. The loop takes what is there (up to ``BATCH``), handles it,
then commits: new items are queued in one outbox transaction, PUBACKs are acknowledged
in one, the audit trail is fsynced once, and the outbox is pumped. So each state change
is durable before anything depending on it happens, and bursts cost one fsync, not N.

1. A device input becomes candidate messages (``edge.produce``), each decided by the
   policy gate with the accepted manifest, the consent state and the audio toggle *as
   they are now*; what the gate keeps becomes a ``Release`` in the durable, encrypted
   outbox; what it removes is audited. Clips are inspected before they are queued.
2. When connected, up to ``max_inflight`` items are handed to the transport; an item is
   deleted only on its PUBACK (a refusal code drops it, counted and audited). On
   connection loss in-flight items return to pending.
3. Commands (consent grant/withdraw, audio, policy version, status) are parsed at the
   boundary and answered on ``cmd/result``. A withdrawal purges that purpose's unsent
   items and clears its retained topics before the next message leaves.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import random
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge import __version__, control, produce
from edge.audit import AuditEvent
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
from edge.errors import (
    InputError,
    PolicyError,
    StoreError,
    StoreFullError,
    TransportError,
)
from edge.inputs import AudioCaptured, ButtonPressed, DeviceInput, StatusDue
from edge.media.audio import validate_audio
from edge.model import Count, Priority, Purpose
from edge.outbox import Dropped, DropReason, Outbox, OutboxItem
from edge.policy import audio as audio_policy
from edge.policy.catalogue import FieldName
from edge.policy.consent import ConsentState, grant, snapshot, switch_version, withdraw
from edge.policy.gate import Candidate, Decision, decide
from edge.policy.manifest import Manifest
from edge.policy.receipts import parse_receipt
from edge.release import Release, clear_retained, release
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
from edge.session import Protocol as MqttProtocol
from edge.shell.audit_log import AuditLog
from edge.shell.clip import enforce_audio_rule
from edge.shell.clock import Clock
from edge.shell.consent_file import load_consent, save_consent
from edge.shell.crypto import load_or_create_key
from edge.shell.shipped import list_versions, load_manifest
from edge.shell.state_file import AgentState, load_agent_state, save_agent_state
from edge.shell.store import OUTBOX_FILE, open_or_quarantine
from edge.shell.transport import Will
from edge.topics import RETAINED_BY_PURPOSE, RETAINED_CHANNELS, Channel, Topics

logger = logging.getLogger(__name__)

BATCH = 256
EXPIRE_EVERY_S = 5.0
COUNTERS_EVERY_S = 300.0
SUBSCRIBE_TIMEOUT_S = 5.0
MAX_UNSTORED = 1000  # items held in memory while the disk is full
DISK_RESERVE_BYTES = 1024 * 1024  # never queue into the disk's last MiB or 10 % (_queue_budget)
SUBSCRIBE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Tick:
    """Housekeeping: expire old items, report counters."""

    at: datetime


@dataclass(frozen=True, slots=True)
class Stop:
    """Shut down cleanly: publish ``stopped``, flush the audit trail."""


AgentEvent = TransportEvent | DeviceInput | Tick | Stop


class Transport(Protocol):
    """What the agent needs of a transport: ``MqttTransport``, or the simulator's
    in-memory link for deterministic runs without sockets."""

    @property
    def protocol(self) -> MqttProtocol: ...

    def connect(self, command: Connect, will: Will | None) -> None: ...

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int: ...

    def subscribe(self, topic: str, qos: int = 1) -> int: ...

    def disconnect(self) -> None: ...

    def drop(self) -> None: ...

    def close(self, timeout_s: float = 5.0) -> None: ...


TransportFactory = Callable[[str, "queue.Queue[TransportEvent]"], Transport]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
        self.topics = Topics(config.device.serial, config.broker.topic_prefix)
        self.counters: Counter[str] = Counter()
        state_dir = config.device.state_dir
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._state_path = state_dir / "agent.json"
        self._consent_path = state_dir / "consent.json"
        self.state: AgentState = load_agent_state(self._state_path, config.policy.version)
        self.manifest: Manifest = load_manifest(self.state.policy_version)
        self.consent: ConsentState = load_consent(self._consent_path)
        self._snapshot_cache = (self.consent, self.manifest, snapshot(self.consent, self.manifest))
        self.app_public_key = app_public_key
        self.audit = AuditLog(state_dir / "audit.jsonl", fsync_every=1 << 30)
        key = load_or_create_key(config.outbox_key_file, store=state_dir / OUTBOX_FILE)
        store, quarantined = open_or_quarantine(state_dir / OUTBOX_FILE, key, synchronous)
        self.outbox = Outbox(store, config.outbox.max_queue_bytes)
        if quarantined is not None:
            logger.error("outbox store was unreadable; quarantined as %s", quarantined.name)
            self._audit(
                AuditEvent.QUARANTINED, detail=f"outbox store quarantined: {quarantined.name}"
            )
        self.session: SessionState
        self.session, self._first_connect = start(
            SessionConfig(
                config.broker.endpoints,
                config.broker.backoff_base_s,
                config.broker.backoff_max_s,
                config.broker.protocol,
            )
        )
        self.transport = transport_factory(config.device.serial, self.events)  # type: ignore[arg-type]
        self.inflight: dict[int, OutboxItem] = {}
        self.stopped = False
        self._audio: list[AudioCaptured] = []
        self._to_queue: list[Release] = []
        self._queued_notes: dict[str, dict[str, object]] = {}  # audit fields, written once stored
        self._acked: list[tuple[OutboxItem, PublishAcked]] = []
        self._subscribe_sent_at: float | None = None
        self._subscribe_attempts = 0
        self._last_expire = clock.monotonic()
        self._last_counters = clock.monotonic()
        self._status_every_s = status_every_s
        self._consent_unsaved = False
        self._status_stored = False
        self._next_status = clock.monotonic()
        self._audit(
            AuditEvent.STARTED, detail=f"agent {__version__}, policy {self.manifest.version}"
        )

    # -- queries -----------------------------------------------------------------------

    @property
    def audio_on(self) -> bool:
        """The audio toggle as the capture side must obey it (design.md rule 5).

        ``audio.enabled = false`` in the config is a hard off for this device; otherwise
        the user's toggle (persisted), else the version's default, decides."""
        if self.config.audio.enabled is False:
            return False
        return audio_policy.may_open_microphone(self.manifest, self.state.audio_on)

    @property
    def ready(self) -> bool:
        """Up, for a service manager: connected, or a status report is durably queued (a
        camera that boots without network is working: it queues what it will send)."""
        return self.session.connected or self._status_stored

    def is_idle(self) -> bool:
        """Connected, every event handled, nothing queued or in flight (tests, benchmarks)."""
        return (
            self.session.connected
            and self.events.unfinished_tasks == 0  # taken events count until committed
            and not self._to_queue
            and not self._acked
            and not self.inflight
            and self.outbox.pending_count() == 0
        )

    def consent_snapshot(self) -> dict[str, str]:
        """Recomputed only when the consent state or the manifest was replaced (both are
        immutable values), since every audit record carries it."""
        consent, manifest, cached = self._snapshot_cache
        if consent is not self.consent or manifest is not self.manifest:
            cached = snapshot(self.consent, self.manifest)
            self._snapshot_cache = (self.consent, self.manifest, cached)
        return dict(cached)

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
                self._refuse_input(event, err)  # the sender's mistake: this event only
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

    def commit(self) -> None:
        """Make the batch durable: queue new items, acknowledge PUBACKs, fsync, pump.

        A full disk (``StoreFullError``) does not stop the agent: what could not be
        written stays in memory (bounded by ``MAX_UNSTORED``) and is retried at the next
        commit; sending, which frees space, goes on. Each occurrence is counted.
        """
        try:
            if self._to_queue:  # the budget only bounds new items
                self.outbox.max_queue_bytes = self._queue_budget()
            self._store_new_items()
            self._store_acks()
        except StoreFullError as err:
            self.counters[Count.STORE_FULL] += 1
            logger.error("outbox: %s; %d item(s) wait in memory", err, len(self._to_queue))
            self._bound_unstored()
        self.audit.sync()
        try:
            self._pump()
        except StoreFullError as err:
            self.counters[Count.STORE_FULL] += 1
            logger.error("outbox: %s; sending paused until there is room", err)

    def _store_new_items(self) -> None:
        if not self._to_queue:
            return
        releases = self._to_queue
        acked = self._acked  # deleted in the same transaction when the batch fits
        acks_stored = False
        try:
            drops = self.outbox.enqueue_many(
                [produce.outbox_item(r) for r in releases],
                acked=[item.record_id for item, _ in acked],
            )
        except StoreFullError:
            # The batch does not fit: store what does, most important first; the rest
            # waits in memory for the next commit.
            releases, drops = self._store_what_fits(releases)
            if not releases:
                raise
        else:
            self._to_queue = []
            self._acked = []
            acks_stored = True
        notes = self._queued_notes
        self._queued_notes = {
            r.record_id: notes[r.record_id] for r in self._to_queue if r.record_id in notes
        }
        refused = {d.record_id for d in drops}
        if not self._status_stored:  # once: READY for a service manager (``ready``)
            telemetry = self.topics.of(Channel.TELEMETRY)
            self._status_stored = any(
                r.topic == telemetry and r.record_id not in refused for r in releases
            )
        # QUEUED is recorded only once the item is durable, so the trail never claims
        # an item that a crash before this commit lost.
        for queued in releases:
            if queued.record_id not in refused:
                self._audit_release(AuditEvent.QUEUED, queued, **notes.get(queued.record_id, {}))
        self._record_drops(drops)
        if acks_stored:
            self._audit_acks(acked)

    def _queue_budget(self) -> int:
        """The outbox may use ``max_queue_bytes``, but never the disk's last
        ``DISK_RESERVE_BYTES`` (or its last tenth, on a small disk): SQLite needs room in
        its WAL to mark items as sent and to delete them once acknowledged, and a disk
        filled by the queue itself could never drain. Beyond the budget the overflow rule
        applies (lowest priority goes first)."""
        try:
            stat = os.statvfs(self.config.device.state_dir)
        except OSError:
            return self.config.outbox.max_queue_bytes
        free = stat.f_bavail * stat.f_frsize
        reserve = min(DISK_RESERVE_BYTES, stat.f_blocks * stat.f_frsize // 10)
        room = self.outbox.store.total_bytes() + free - reserve
        return max(1, min(self.config.outbox.max_queue_bytes, room))

    def _purge_unstored(self, purpose: Purpose, why: str) -> None:
        """Items of ``purpose`` decided in this batch but not yet stored are purged too:
        counted and audited like the stored ones."""
        keep: list[Release] = []
        for item in self._to_queue:
            if item.purpose is purpose:
                self._queued_notes.pop(item.record_id, None)
                self.counters[Count.DROPPED_PURGED] += 1
                self._audit_release(AuditEvent.PURGED, item, detail=f"purged before storing: {why}")
            else:
                keep.append(item)
        self._to_queue = keep

    def _store_what_fits(self, releases: list[Release]) -> tuple[list[Release], list[Dropped]]:
        stored: list[Release] = []
        drops: list[Dropped] = []
        waiting: list[Release] = []
        for item in sorted(releases, key=lambda r: (r.priority, r.created_at)):
            if waiting:
                waiting.append(item)
                continue
            try:
                drops += self.outbox.enqueue_many([produce.outbox_item(item)])
                stored.append(item)
            except StoreFullError:
                waiting.append(item)
        self._to_queue = waiting
        return stored, drops

    def _store_acks(self) -> None:
        if not self._acked:
            return
        acked = self._acked
        self.outbox.ack([item.record_id for item, _ in acked])
        self._acked = []
        self._audit_acks(acked)

    def _audit_acks(self, acked: list[tuple[OutboxItem, PublishAcked]]) -> None:
        for item, ack in acked:
            event = (
                AuditEvent.ACKED
                if self.transport.protocol is MqttProtocol.MQTT5
                else AuditEvent.UNCONFIRMED
            )
            self._audit_release(event, item, reason_code=ack.reason_code)

    def _bound_unstored(self) -> None:
        """Keep at most MAX_UNSTORED unwritten items: drop the lowest priority, newest first."""
        if len(self._to_queue) <= MAX_UNSTORED:
            return
        ranked = sorted(self._to_queue, key=lambda r: (r.priority, r.created_at))
        kept, lost = ranked[:MAX_UNSTORED], ranked[MAX_UNSTORED:]
        self._to_queue = kept
        for item in lost:
            self._queued_notes.pop(item.record_id, None)
            self.counters[Count.DROPPED_DISK_FULL] += 1
            self._audit_release(AuditEvent.DROPPED, item, detail="disk full: not stored")

    def handle(self, event: AgentEvent) -> None:
        """Handle one event (no commit: ``step`` commits after each batch)."""
        if isinstance(event, PublishAcked):
            self._on_puback(event)
        elif isinstance(event, ConnectSucceeded):
            self._on_connected(event)
        elif isinstance(event, ConnectFailed):
            logger.warning("connect to %s failed: %s", event.endpoint, event.reason)
            self.counters[Count.CONNECT_FAILURES] += 1
            self.session, command = on_connect_failed(self.session, event, self.rng.random())
            self._connect(command)
        elif isinstance(event, ConnectionLost):
            logger.warning("connection lost: %s", event.reason)
            self.counters[Count.CONNECTION_LOST] += 1
            self._requeue_inflight()
            self.session, command = on_connection_lost(self.session, event, self.rng.random())
            self._connect(command)
        elif isinstance(event, MessageReceived):
            self._on_message(event)
        elif isinstance(event, Subscribed):
            self._subscribe_sent_at = None
            if not event.granted:
                logger.error("command subscription refused: %s", event.reason_codes)
        elif isinstance(event, Tick):
            pass  # housekeeping runs after every batch
        elif isinstance(event, Stop):
            self._stop()
        else:
            self._on_device_input(event)

    def _refuse_input(self, event: AgentEvent, err: InputError | PolicyError) -> None:
        """One bad input (a frame of the wrong shape, a clip whose frames differ in size,
        a malformed audio buffer) is refused alone: counted, audited, and the loop goes on
        with the rest of the batch. What it had already produced (an alarm event before
        its clip failed) stays queued."""
        self.counters[Count.INPUTS_REFUSED] += 1
        logger.warning("%s refused: %s", type(event).__name__, err)
        self._audit(AuditEvent.INPUT_REFUSED, detail=f"{type(event).__name__}: {err}")

    def _subscribe_commands(self) -> None:
        self._subscribe_attempts += 1
        self._subscribe_sent_at = self.clock.monotonic()
        self.transport.subscribe(self.topics.of(Channel.COMMAND), qos=1)

    def _housekeeping(self) -> None:
        if self._consent_unsaved:
            self._persist_consent()
        mono = self.clock.monotonic()
        sent = self._subscribe_sent_at
        if (
            sent is not None
            and self.session.connected
            and mono - sent > SUBSCRIBE_TIMEOUT_S
            and self._subscribe_attempts < SUBSCRIBE_ATTEMPTS
        ):
            # A clustered broker may not answer a new QoS 1 subscription while a node is
            # down (NATS: ~4 s after it is back): retry a bounded number of times.
            logger.warning("no SUBACK for the command topic after %.0f s: retrying", mono - sent)
            try:
                self._subscribe_commands()
            except TransportError as err:
                logger.warning("resubscribe failed: %s", err)
        if self._status_every_s is not None and mono >= self._next_status:
            self._next_status = mono + self._status_every_s
            self._on_device_input(StatusDue(self.clock.now()))
        if mono - self._last_expire >= EXPIRE_EVERY_S:
            self._last_expire = mono
            self._record_drops(self.outbox.expire(self.clock.now()))
        if mono - self._last_counters >= COUNTERS_EVERY_S:
            self._last_counters = mono
            self.report_counters()

    # -- connection --------------------------------------------------------------------

    def _connect(self, command: Connect) -> None:
        counter = self.state.session_counter + 1
        self._set_state(AgentState(self.state.policy_version, self.state.audio_on, counter))
        offline = self._availability("offline", counter)
        will = None if offline is None else Will(self.topics.of(Channel.AVAILABILITY), offline[0])
        self.transport.connect(command, will)

    def _availability(self, state: str, session: int) -> tuple[bytes, str] | None:
        """Availability goes through the gate too (row 6: online/offline status): where the
        gate removes ``online_status``, no availability leaves at all (no Will either)."""
        decision = self._decide(
            Candidate(Purpose.DEVICE_STATUS, {FieldName.ONLINE_STATUS: state}, self.clock.now())
        )
        kept = decision.kept.get(FieldName.ONLINE_STATUS)
        if not isinstance(kept, str):
            self.counters[Count.AVAILABILITY_DENIED] += 1
            return None
        clause = decision.clauses[FieldName.ONLINE_STATUS]
        return produce.availability_payload(kept, session), clause

    def _on_connected(self, event: ConnectSucceeded) -> None:
        self.session = on_connected(self.session, event)
        logger.info("connected to %s over MQTT %s", event.endpoint, event.protocol.value)
        self._audit(AuditEvent.CONNECTED, detail=f"{event.endpoint} MQTT {event.protocol.value}")
        try:
            self._subscribe_attempts = 0
            self._subscribe_commands()
            online = self._availability("online", self.state.session_counter)
            if online is not None:
                self._publish_direct(self.topics.of(Channel.AVAILABILITY), *online)
            self._publish_birth()
        except TransportError as err:
            logger.warning("the connection went away during the birth: %s", err)

    def _publish_direct(self, topic: str, payload: bytes, clause: str) -> None:
        """Retained status: sent at once on each connection, never queued across sessions."""
        mid = self.transport.publish(topic, payload, qos=1, retain=True)
        self.audit.append(
            AuditEvent.SENT,
            self.clock.now().isoformat(),
            topic=topic,
            payload_sha256=sha256(payload),
            size=len(payload),
            qos=1,
            policy_version=self.manifest.version,
            clause=clause,
            detail=f"retained, mid {mid}",
        )

    def _publish_birth(self) -> None:
        candidate = produce.birth_candidate(
            self.clock.now(),
            self.manifest,
            self.consent_snapshot(),
            self.audio_on,
            __version__,
            self.transport.protocol.value,
            self.state.session_counter,
            self.topics,
        )
        item = self._release(self._decide(candidate), Channel.BIRTH, Priority.STATUS, retain=True)
        self._publish_direct(item.topic, item.payload, item.clause)

    def _publish_birth_if_connected(self) -> None:
        if self.session.connected:
            try:
                self._publish_birth()
            except TransportError as err:
                logger.warning("birth not published: %s", err)

    # -- outbox ------------------------------------------------------------------------

    def _pump(self) -> None:
        if not self.session.connected:
            return
        room = self.config.broker.max_inflight - len(self.inflight)
        if room <= 0:
            return
        batch, drops = self.outbox.next_batch(self.clock.now(), room)
        self._record_drops(drops)
        checked: list[OutboxItem] = []
        refused: list[str] = []
        for queued in batch:
            item = self._audio_checked(queued)
            if item is None:
                refused.append(queued.record_id)
            else:
                checked.append(item)
        if refused:
            self._record_drops(self.outbox.drop(refused, DropReason.DENIED_AT_SEND))
        for position, item in enumerate(checked):
            try:
                mid = self.transport.publish(item.topic, item.payload, item.qos, item.retain)
            except TransportError as err:
                logger.warning(
                    "publish failed, %d item(s) stay queued: %s", len(checked) - position, err
                )
                self.outbox.requeue_inflight()
                self.inflight.clear()
                return
            self.inflight[mid] = item

    def _audio_checked(self, item: OutboxItem) -> OutboxItem | None:
        """Rule 5 at send time: a clip queued while audio was on leaves without its audio
        track if audio has been turned off since (``produce.clip_payload_for_sending``);
        one that cannot be checked does not leave at all (None: the caller drops it)."""
        if item.topic != self.topics.of(Channel.CLIP) or self.audio_on:
            return item
        payload, stripped = produce.clip_payload_for_sending(item.payload, audio_allowed=False)
        if payload is None:
            self.counters[Count.CLIPS_REFUSED] += 1
            self._audit_release(
                AuditEvent.DENIED, item, detail="audio is off and the clip cannot be checked"
            )
            return None
        if not stripped:
            return item
        self.counters[Count.AUDIO_TRACKS_STRIPPED] += 1
        self._audit_release(
            AuditEvent.DENIED, item, detail="audio turned off: audio track stripped before sending"
        )
        return replace(item, payload=payload)

    def _on_puback(self, event: PublishAcked) -> None:
        item = self.inflight.pop(event.mid, None)
        if item is None:
            return  # a direct (status/birth) publish, or an item purged meanwhile
        if event.refused:
            self.counters[Count.REFUSED_BY_BROKER] += 1
            for drop in self.outbox.refused([item.record_id]):
                self._audit_release(
                    AuditEvent.REFUSED_BY_BROKER,
                    item,
                    reason_code=event.reason_code,
                    detail=event.reason,
                )
                del drop
        else:
            self._acked.append((item, event))

    def _requeue_inflight(self) -> None:
        self.inflight.clear()
        self.outbox.requeue_inflight()

    def _record_drops(self, drops: list[Dropped]) -> None:
        for drop in drops:
            self.counters[f"dropped_{drop.reason.value}"] += 1
            event = {
                DropReason.EXPIRED: AuditEvent.EXPIRED,
                DropReason.PURGED: AuditEvent.PURGED,
                DropReason.REFUSED_BY_BROKER: AuditEvent.REFUSED_BY_BROKER,
            }.get(drop.reason, AuditEvent.DROPPED)
            self.audit.append(
                event,
                self.clock.now().isoformat(),
                topic=drop.topic,
                size=drop.size,
                record_id=drop.record_id,
                policy_version=drop.policy_version,
                clause=drop.clause,
                detail=drop.reason.value,
            )

    def report_counters(self) -> None:
        """Drops by reason are telemetry too (style guide §4.6): queue them."""
        counts = {**self.outbox.counters(), **{k: v for k, v in self.counters.items() if v}}
        candidate = Candidate(Purpose.AGENT, {FieldName.DROP_COUNTERS: counts}, self.clock.now())
        self.submit(candidate, Channel.COUNTERS, Priority.DIAGNOSTICS)

    # -- the gate ----------------------------------------------------------------------

    def _decide(self, candidate: Candidate) -> Decision:
        decision = decide(candidate, self.manifest, self.consent, self.audio_on, self.clock.now())
        if decision.failure:
            self.counters[Count.GATE_FAILURES] += 1
            logger.error("policy evaluation failed; nothing leaves: %s", decision.failure)
        return decision

    def _release(
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
            topic=self.topics.of(channel),
            purpose=decision.purpose,
            priority=priority,
            created_at=created_at or self.clock.now(),
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
        """Gate one candidate; queue what it keeps (at the next commit); audit the rest."""
        decision = self._decide(candidate)
        audit_counts = {f"removed_{reason.value}": 0 for reason in decision.removed.values()}
        for reason in decision.removed.values():
            audit_counts[f"removed_{reason.value}"] += 1
            self.counters[f"removed_{reason.value}"] += 1
        audit_counts.update(counts or {})
        if decision.allowed:
            decision = self._check_media(decision, audit_counts)
        if not decision.allowed:
            self.counters[Count.DENIED] += 1
            self._audit(
                AuditEvent.DENIED,
                topic=self.topics.of(channel),
                counts=audit_counts,
                detail=f"{candidate.purpose.value}: nothing may leave",
            )
            return None
        retain = channel in RETAINED_CHANNELS
        item = self._release(decision, channel, priority, retain, candidate.created_at)
        self._to_queue.append(item)
        self._queued_notes[item.record_id] = {
            "counts": audit_counts,
            "consent": self.consent_snapshot(),
        }
        return item

    def _check_media(self, decision: Decision, counts: dict[str, int]) -> Decision:
        """Every outgoing clip is inspected before it is queued (``enforce_audio_rule``,
        the same rule as at send time): one with audio it may not carry is stripped, and
        refused if it still does not pass (fail closed)."""
        clip = decision.kept.get(FieldName.EVENT_CLIP)
        if not isinstance(clip, bytes):
            return decision
        outcome = enforce_audio_rule(clip, FieldName.AUDIO_TRACK in decision.kept)
        if outcome.stripped:
            counts["audio_tracks_stripped"] = 1
            self.counters[Count.AUDIO_TRACKS_STRIPPED] += 1
        if outcome.clip is None:
            counts["clips_refused"] = 1
            self.counters[Count.CLIPS_REFUSED] += 1
            logger.warning("clip refused: %s", outcome.reason)
            return Decision(
                decision.purpose,
                {},
                {},
                decision.removed,
                decision.policy_version,
                decision.manifest_digest,
            )
        kept = dict(decision.kept)
        kept[FieldName.EVENT_CLIP] = outcome.clip
        return Decision(
            decision.purpose,
            kept,
            decision.clauses,
            decision.removed,
            decision.policy_version,
            decision.manifest_digest,
            decision.retention,
        )

    # -- device inputs -----------------------------------------------------------------

    def _on_device_input(self, event: DeviceInput) -> None:
        if isinstance(event, ButtonPressed):
            self._withdraw(None, source="device button", command_id=None)
            return
        if isinstance(event, AudioCaptured):
            if not self.audio_on:
                # The capture side must not even produce these; if it does, discard and count.
                self.counters[Count.AUDIO_REFUSED_AT_SOURCE] += 1
                self._audit(
                    AuditEvent.DENIED, detail="microphone samples while audio is off: discarded"
                )
                return
            validate_audio(event.samples, event.sample_rate_hz)  # refused here, not at the clip
            self._audio = [*self._audio[-15:], event]
            return
        audio, self._audio = (self._audio, []) if self.audio_on else ([], [])
        for candidate, channel, priority, counts in produce.candidates(
            event, self.config, audio, self.audio_on, self.clock.monotonic
        ):
            for name, value in counts.items():
                self.counters[name] += value
            if any(name.startswith("anonymiser_fallback") for name in counts):
                self._audit(AuditEvent.FALLBACK, topic=self.topics.of(channel), counts=counts)
            self.submit(candidate, channel, priority, counts)

    # -- commands ------------------------------------------------------------------------

    def _on_message(self, event: MessageReceived) -> None:
        if event.topic != self.topics.of(Channel.COMMAND):
            return
        command = parse_command(event.payload)
        self._audit(AuditEvent.COMMAND, size=len(event.payload), detail=type(command).__name__)
        if isinstance(command, Refused):
            self.counters[Count.COMMANDS_REFUSED] += 1  # the sender's mistake: refused, answered
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
            self._command_result(command.id, True, "status", self.status())

    def status(self) -> dict[str, object]:
        return {
            "policy_version": self.manifest.version,
            "audio": "on" if self.audio_on else "off",
            "consent": self.consent_snapshot(),
            "queued": self.outbox.pending_count(),
            "dropped": self.outbox.counters(),
            "connected": self.session.connected,
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
            self.app_public_key,
            self.config.device.serial,
            self.manifest,
            self.clock.now(),
            timedelta(seconds=self.config.policy.receipt_max_age_s),
        )
        if result.accepted:
            try:
                save_consent(self._consent_path, result.state)
            except StoreError as err:
                # A grant that is not on disk must not take effect: after a reboot the
                # device would not know it, and the app would believe it holds.
                self.counters[Count.CONSENT_WRITE_FAILED] += 1
                logger.error("consent grant refused: %s", err)
                self._audit(AuditEvent.CONSENT_REFUSED, detail=f"not persisted: {err}")
                self._command_result(command.id, False, "the device could not save the grant")
                return
            self.consent = result.state
            self._audit(AuditEvent.CONSENT_GRANTED, detail=result.reason)
            self._publish_birth_if_connected()
        else:
            self._audit(AuditEvent.CONSENT_REFUSED, detail=result.reason)
        self._command_result(command.id, result.accepted, result.reason)

    def _withdraw(self, purpose: Purpose | None, source: str, command_id: str | None) -> None:
        purposes = [purpose] if purpose is not None else list(Purpose)
        before = control.enabled(self.manifest, self.consent_snapshot())
        changed = False
        withdrawn: list[Purpose] = []
        for one in purposes:
            entry = self.consent.entries.get(one.value)
            if purpose is None and entry is None:
                continue
            self.consent, was = withdraw(self.consent, one, self.clock.now(), source)
            changed = changed or was
            withdrawn.append(one)
            self._audit(AuditEvent.CONSENT_WITHDRAWN, detail=f"{one.value} by {source}")
        after = control.enabled(self.manifest, self.consent_snapshot())
        for one in control.purposes_to_stop(before, after, withdrawn):
            self._stop_purpose(one, f"consent for {one.value} withdrawn")
        self._persist_consent()
        self._publish_birth_if_connected()
        if command_id is not None:
            label = purpose.value if purpose else "all"
            self._command_result(
                command_id, True, f"withdrawn: {label}" if changed else f"{label} was not granted"
            )

    def _stop_purpose(self, purpose: Purpose, why: str) -> None:
        """Rule 4, the one place it is carried out: forget in-flight items of ``purpose``,
        purge its unstored and stored items, clear its retained topics; each recorded."""
        for mid, item in list(self.inflight.items()):
            if item.purpose is purpose:
                del self.inflight[mid]
        self._purge_unstored(purpose, why)
        self._record_drops(self.outbox.purge_purpose(purpose))
        for channel in RETAINED_BY_PURPOSE.get(purpose, ()):
            cleared = clear_retained(
                record_id=uuid.uuid4().hex,
                topic=self.topics.of(channel),
                purpose=Purpose.AGENT,
                created_at=self.clock.now(),
                reason=why,
            )
            self._to_queue.append(cleared)
            self._queued_notes[cleared.record_id] = {"detail": "clear retained topic"}

    def _set_audio(self, command: SetAudio) -> None:
        if command.on and self.config.audio.enabled is False:
            reason = "audio is disabled in this device's configuration"
            self._command_result(command.id, False, reason)
            return
        if command.on and not self.manifest.discloses_audio():
            self._command_result(
                command.id, False, f"policy {self.manifest.version} discloses no audio collection"
            )
            return
        self._set_state(
            AgentState(self.state.policy_version, command.on, self.state.session_counter)
        )
        if not command.on:
            self._audio.clear()
        self._audit(AuditEvent.AUDIO_TOGGLED, detail="on" if command.on else "off")
        self._publish_birth_if_connected()
        self._command_result(command.id, True, "audio on" if command.on else "audio off")

    def _accept_policy(self, command: AcceptPolicy) -> None:
        if command.version not in list_versions():
            known = ", ".join(list_versions())
            self._command_result(
                command.id, False, f"unknown policy version {command.version!r} (known: {known})"
            )
            return
        try:
            new = load_manifest(command.version)
        except PolicyError as err:
            self._command_result(command.id, False, str(err))
            return
        old = self.manifest
        before = control.enabled(old, self.consent_snapshot())
        # Rule 6: the new version takes effect before the next message leaves.
        self.consent = switch_version(self.consent, old, new, self.clock.now())
        self.manifest = new
        self._set_state(AgentState(new.version, self.state.audio_on, self.state.session_counter))
        self._persist_consent()
        after = control.enabled(new, self.consent_snapshot())
        # Whatever the new version does not let send stops, retained topics included; and
        # items queued under the old version for a purpose not disclosed now are purged
        # even if it was never enabled (a queue restored from an older run).
        never = frozenset(p for p in Purpose if not new.discloses(p))
        for purpose in control.purposes_to_stop(before, after, never):
            self._stop_purpose(purpose, f"policy version switched to {new.version}")
        if not self.audio_on:
            self._audio.clear()
        self._audit(AuditEvent.POLICY_SWITCHED, detail=f"{old.version} -> {new.version}")
        self._publish_birth_if_connected()
        self._command_result(command.id, True, f"accepted {new.version}")

    def _command_result(
        self, command_id: str, ok: bool, reason: str, status: Mapping[str, object] | None = None
    ) -> None:
        candidate = produce.command_result_candidate(
            self.clock.now(), command_id, ok, reason, status
        )
        self.submit(candidate, Channel.COMMAND_RESULT, Priority.STATUS)

    # -- stop ------------------------------------------------------------------------------

    def _stop(self) -> None:
        self.commit()
        self.stopped = True
        if self.session.connected:
            try:
                stopped = self._availability("stopped", self.state.session_counter)
                if stopped is not None:
                    self._publish_direct(self.topics.of(Channel.AVAILABILITY), *stopped)
            except TransportError as err:
                logger.warning("could not publish 'stopped': %s", err)
            self.transport.disconnect()
        self.transport.close()
        self._audit(AuditEvent.STOPPED)
        self.audit.close()
        self.outbox.close()

    def kill(self) -> None:
        """Die without goodbye (simulated power cut): no DISCONNECT, no flush beyond what
        was committed. The broker sends the Will."""
        self.stopped = True
        self.transport.drop()
        self.transport.close(timeout_s=1)
        self.audit.abandon()
        self.outbox.close()

    # -- helpers ---------------------------------------------------------------------------

    def _persist_consent(self) -> None:
        """Save a withdrawal or a lapse. It takes effect in memory at once whatever the
        disk does (rule 4: stop now); a failed save is counted and retried after every
        batch until it holds, so a reboot cannot bring the old grant back unnoticed."""
        try:
            save_consent(self._consent_path, self.consent)
        except StoreError as err:
            self.counters[Count.CONSENT_WRITE_FAILED] += 1
            if not self._consent_unsaved:
                logger.error("%s; the change holds in memory and is retried", err)
            self._consent_unsaved = True
        else:
            self._consent_unsaved = False

    def _set_state(self, state: AgentState) -> None:
        """Keep the new state; persist it, but never let a full disk stop the agent
        (the session counter and toggles stay right in memory and are written later)."""
        self.state = state
        try:
            save_agent_state(self._state_path, state)
        except OSError as err:
            self.counters[Count.STATE_WRITE_FAILED] += 1
            logger.error("cannot save agent state (%s); keeping it in memory", err.strerror)

    def _audit(self, event: AuditEvent, **fields: object) -> None:
        self.audit.append(
            event,
            self.clock.now().isoformat(),
            policy_version=self.manifest.version,
            consent=self.consent_snapshot(),
            **fields,
        )

    def _audit_release(
        self, event: AuditEvent, item: Release | OutboxItem, **fields: object
    ) -> None:
        """One record about one message: where, how big, its digest, under which clause."""
        self.audit.append(
            event,
            self.clock.now().isoformat(),
            topic=item.topic,
            payload_sha256=sha256(item.payload),
            size=len(item.payload),
            qos=item.qos,
            record_id=item.record_id,
            policy_version=item.policy_version,
            clause=item.clause,
            **fields,
        )
