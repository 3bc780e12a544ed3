"""Shell: the one executor of the core's decisions (``edge.control``), and the one holder
of the device state they change (accepted version, consents, audio toggle).

An ``Outcome`` is carried out in the order given. The state is adopted first, so that a
birth or a status report in the same outcome already says what the device does now; a
grant that cannot be saved is undone before anything else happens (it must not take
effect: after a reboot the device would not know it). Stopping a purpose (a withdrawal,
a lapse by a policy switch, a version that discloses less) has this one executor:
``stop_purpose``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from edge import __version__, control, produce
from edge.audit import AuditEvent
from edge.errors import StoreError, TransportError
from edge.model import Priority, Purpose
from edge.outbox import Outbox
from edge.policy.consent import snapshot
from edge.policy.gate import Candidate
from edge.release import clear_retained
from edge.shell.clock import Clock
from edge.shell.device_files import DeviceFiles
from edge.shell.gatekeeper import Gatekeeper
from edge.shell.link import Link
from edge.shell.recorder import Recorder
from edge.shell.state_file import AgentState
from edge.shell.writer import OutboxWriter
from edge.topics import RETAINED_BY_PURPOSE, Channel, Topics

logger = logging.getLogger(__name__)


class Executor:
    """Holds ``device`` and changes it only through ``apply``."""

    def __init__(
        self,
        device: control.DeviceState,
        files: DeviceFiles,
        link: Link,
        outbox: Outbox,
        writer: OutboxWriter,
        gate: Gatekeeper,
        recorder: Recorder,
        topics: Topics,
        clock: Clock,
        drop_held_audio: Callable[[], None],
    ) -> None:
        """``drop_held_audio``: forget the microphone samples the agent holds for the next
        clip (audio turned off)."""
        self.device = device
        self._files = files
        self._link = link
        self._outbox = outbox
        self._writer = writer
        self._gate = gate
        self._recorder = recorder
        self._topics = topics
        self._clock = clock
        self._drop_held_audio = drop_held_audio
        self._snapshot_cache = (device, snapshot(device.consent, device.manifest))

    def consent_snapshot(self) -> dict[str, str]:
        """Recomputed only when the device state was replaced (an immutable value), since
        every audit record carries it."""
        device, cached = self._snapshot_cache
        if device is not self.device:
            cached = snapshot(self.device.consent, self.device.manifest)
            self._snapshot_cache = (self.device, cached)
        return dict(cached)

    def status(self) -> dict[str, object]:
        """The status report a ``request_status`` command gets."""
        return {
            "policy_version": self.device.manifest.version,
            "audio": "on" if self.device.audio_on else "off",
            "consent": self.consent_snapshot(),
            "queued": self._outbox.pending_count(),
            "dropped": self._outbox.counters(),
            "connected": self._link.connected,
        }

    def birth(self) -> Candidate:
        """The retained birth: what the device does now (version, consents, audio)."""
        return produce.birth_candidate(
            self._clock.now(),
            self.device.manifest,
            self.consent_snapshot(),
            self.device.audio_on,
            __version__,
            self._link.transport.protocol.value,
            self._files.state.session_counter,
            self._topics,
        )

    def apply(self, outcome: control.Outcome) -> None:
        """Adopt the new state, then carry out each effect in order."""
        previous, self.device = self.device, outcome.state
        for effect in outcome.effects:
            if isinstance(effect, control.SaveConsent) and effect.required:
                try:
                    self._files.save_grant(self.device.consent)
                except StoreError as err:
                    self.device = previous
                    self._refuse_unsaved_grant(outcome, err)
                    return
            elif isinstance(effect, control.SaveConsent):
                self._files.save_consent(self.device.consent)
            elif isinstance(effect, control.SaveToggles):
                session = self._files.state.session_counter
                version = self.device.manifest.version
                self._files.save_state(AgentState(version, self.device.audio_toggle, session))
            elif isinstance(effect, control.StopPurpose):
                self.stop_purpose(effect.purpose, effect.why)
            elif isinstance(effect, control.DropHeldAudio):
                self._drop_held_audio()
            elif isinstance(effect, control.Record):
                self._recorder.agent(effect.event, detail=effect.detail)
            elif isinstance(effect, control.PublishBirth):
                self._publish_birth()
            else:
                status = self.status() if effect.status else None
                self.reply(effect.command_id, effect.ok, effect.reason, status)

    def stop_purpose(self, purpose: Purpose, why: str) -> None:
        """Rule 4, the one place it is carried out: forget in-flight items of ``purpose``,
        purge its unstored and stored items, clear its retained topics; each recorded."""
        self._link.forget(purpose)
        self._writer.purge_unstored(purpose, why)
        self._recorder.drops(self._outbox.purge_purpose(purpose))
        for channel in RETAINED_BY_PURPOSE.get(purpose, ()):
            cleared = clear_retained(
                record_id=uuid.uuid4().hex,
                topic=self._topics.of(channel),
                purpose=Purpose.AGENT,
                created_at=self._clock.now(),
                reason=why,
            )
            self._writer.add(cleared, detail="clear retained topic")

    def reply(
        self, command_id: str, ok: bool, reason: str, status: dict[str, object] | None = None
    ) -> None:
        """Answer a command on ``cmd/result`` (through the gate, like every message)."""
        now = self._clock.now()
        candidate = produce.command_result_candidate(now, command_id, ok, reason, status)
        self._gate.submit(candidate, Channel.COMMAND_RESULT, Priority.STATUS)

    def _refuse_unsaved_grant(self, outcome: control.Outcome, err: StoreError) -> None:
        logger.error("consent grant refused: %s", err)
        self._recorder.agent(AuditEvent.CONSENT_REFUSED, detail=f"not persisted: {err}")
        for effect in outcome.effects:
            if isinstance(effect, control.Reply):
                self.reply(effect.command_id, False, "the device could not save the grant")

    def _publish_birth(self) -> None:
        if self._link.connected:
            try:
                self._link.publish_birth(self.birth())
            except TransportError as err:
                logger.warning("birth not published: %s", err)
