"""Pure: turns device inputs into candidate messages for the policy gate.

Each input yields zero or more ``(Candidate, Channel, Priority, counts)``. The candidate
names its purpose and carries every field the device *could* send; the gate decides
which of them leave. Media is made safe before the gate sees it:

* every alarm snapshot and every clip frame is anonymised first (plates blurred, failing
  closed) and the snapshot is encoded as a metadata-free JPEG; the counts of blurred
  regions and fallbacks go to the audit trail;
* an event clip carries an audio track only when the microphone was allowed to record;
  the audio field is then decided by the gate like any other field, and the agent
  inspects (and if need be strips) the container before it is queued.

AI detections of people, vehicles and pets and plate numbers belong to EN 2023 row 19
("device AI", consent); see that manifest's readings.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

import numpy as np

from edge.config import AgentConfig
from edge.inputs import (
    AiDetected,
    AudioCaptured,
    DeviceInput,
    DeviceLogged,
    DiagnosticsSampled,
    MotionAlarm,
    StatusDue,
)
from edge.media.anonymise import anonymise, anonymise_clip
from edge.media.audio import AudioChunk, validate_audio
from edge.media.frames import Frame
from edge.media.snapshot import encode_snapshot
from edge.model import DetectionClass, Priority, Purpose
from edge.outbox import OutboxItem
from edge.policy.catalogue import FieldName
from edge.policy.gate import Candidate, Decision
from edge.policy.manifest import Manifest
from edge.release import Release
from edge.topics import Channel, Topics

Produced = tuple[Candidate, Channel, Priority, dict[str, int]]

AI_FIELDS = {
    DetectionClass.HUMAN: FieldName.AI_HUMAN,
    DetectionClass.VEHICLE: FieldName.AI_VEHICLE,
    DetectionClass.PET: FieldName.AI_PET,
}


def candidates(
    event: DeviceInput,
    config: AgentConfig,
    audio: Sequence[AudioCaptured],
    audio_on: bool,
    monotonic: Callable[[], float],
) -> Iterator[Produced]:
    """The candidate messages one device input gives rise to."""
    serial = config.device.serial
    if isinstance(event, StatusDue):
        fields: dict[FieldName | str, object] = {
            FieldName.SERIAL_NUMBER: serial,
            FieldName.MAC_ADDRESS: config.device.mac_address,
            FieldName.MODEL: config.device.model,
            FieldName.FIRMWARE_VERSION: config.device.firmware_version,
            FieldName.ONLINE_STATUS: "online",
            FieldName.TIME_ZONE: config.device.time_zone,  # row 3, not row 6: removed
        }
        candidate = Candidate(Purpose.DEVICE_STATUS, fields, event.at, FieldName.ONLINE_STATUS)
        yield candidate, Channel.TELEMETRY, Priority.STATUS, {}
    elif isinstance(event, MotionAlarm):
        yield from _alarm(event, config, audio if audio_on else (), monotonic)
    elif isinstance(event, AiDetected):
        yield from _detection(event, serial)
    elif isinstance(event, DiagnosticsSampled):
        fields = {FieldName.SERIAL_NUMBER: serial}
        fields.update(event.values)
        yield (
            Candidate(Purpose.DIAGNOSTICS, fields, event.at),
            Channel.DIAGNOSTICS,
            Priority.DIAGNOSTICS,
            {},
        )
    elif isinstance(event, DeviceLogged):
        fields = {FieldName.SERIAL_NUMBER: serial, FieldName.DEVICE_LOG: event.line}
        candidate = Candidate(Purpose.DEVICE_LOG, fields, event.at, FieldName.DEVICE_LOG)
        yield candidate, Channel.DEVICE_LOG, Priority.DIAGNOSTICS, {}


def _alarm(
    event: MotionAlarm,
    config: AgentConfig,
    audio: Sequence[AudioCaptured],
    monotonic: Callable[[], float],
) -> Iterator[Produced]:
    serial = config.device.serial
    alarm: dict[FieldName | str, object] = {
        FieldName.SERIAL_NUMBER: serial,
        FieldName.ALARM_EVENT: {"type": event.kind, "at": event.at.isoformat()},
    }
    yield (
        Candidate(Purpose.NOTIFICATION, alarm, event.at, FieldName.ALARM_EVENT),
        Channel.ALARM_EVENT,
        Priority.ALARM_EVENT,
        {},
    )
    budget_s = config.media.anonymiser_budget_ms / 1000.0
    safe = anonymise(event.frame, budget_s, monotonic)
    counts = {"regions_blurred": safe.regions_blurred}
    if safe.fallback is not None:
        counts[f"anonymiser_fallback_{safe.fallback.value}"] = 1
    jpeg = encode_snapshot(
        safe.frame, config.media.snapshot_quality, config.media.snapshot_max_side_px
    )
    yield (
        Candidate(
            Purpose.NOTIFICATION,
            {FieldName.SERIAL_NUMBER: serial, FieldName.ALARM_SNAPSHOT: jpeg},
            event.at,
            FieldName.ALARM_SNAPSHOT,
        ),
        Channel.ALARM_SNAPSHOT,
        Priority.SNAPSHOT,
        counts,
    )
    if event.clip_frames:
        yield _clip(event, config, audio, monotonic)


def _clip(
    event: MotionAlarm,
    config: AgentConfig,
    audio: Sequence[AudioCaptured],
    monotonic: Callable[[], float],
) -> Produced:
    from edge.shell.clip import make_clip  # PyAV costs ~20 MB: load it only for clips

    budget_s = config.media.anonymiser_budget_ms / 1000.0
    blurred = 0
    fallbacks = 0

    def anonymised() -> Iterator[Frame]:
        # Straight into the encoder: no list of the clip's frames is kept.
        nonlocal blurred, fallbacks
        # Boxes are carried +-2 frames: a plate missed in one frame is covered from its
        # neighbours (holds 5 frames at a time).
        for safe in anonymise_clip(event.clip_frames, budget_s, monotonic):
            blurred += safe.regions_blurred
            fallbacks += safe.fallback is not None
            yield safe.frame

    chunk = audio_chunk(audio)
    clip = make_clip(anonymised(), config.media.clip_fps, chunk)
    fields: dict[FieldName | str, object] = {
        FieldName.SERIAL_NUMBER: config.device.serial,
        FieldName.EVENT_CLIP: clip,
    }
    if chunk is not None:
        fields[FieldName.AUDIO_TRACK] = {"codec": "aac", "seconds": round(chunk.seconds, 2)}
    counts = {"clip_regions_blurred": blurred}
    if fallbacks:
        counts["anonymiser_fallback_clip_frames"] = fallbacks
    candidate = Candidate(Purpose.CLOUD_STORAGE, fields, event.at, FieldName.EVENT_CLIP)
    return candidate, Channel.CLIP, Priority.CLIP, counts


def audio_chunk(audio: Sequence[AudioCaptured]) -> AudioChunk | None:
    """The microphone's recent samples as one chunk (None without any)."""
    if not audio:
        return None
    rate = audio[-1].sample_rate_hz
    samples = np.concatenate([a.samples for a in audio if a.sample_rate_hz == rate])
    return validate_audio(samples, rate)


def _detection(event: AiDetected, serial: str) -> Iterator[Produced]:
    if event.cls is DetectionClass.PLATE:
        if event.plate_text:
            fields: dict[FieldName | str, object] = {
                FieldName.SERIAL_NUMBER: serial,
                FieldName.PLATE_NUMBER: event.plate_text,
            }
            candidate = Candidate(Purpose.DEVICE_AI, fields, event.at, FieldName.PLATE_NUMBER)
            yield candidate, Channel.AI_PLATE, Priority.ALARM_EVENT, {}
        return
    name = AI_FIELDS[event.cls]
    fields = {
        FieldName.SERIAL_NUMBER: serial,
        name: {"confidence": round(event.confidence, 3), "at": event.at.isoformat()},
    }
    yield (
        Candidate(Purpose.DEVICE_AI, fields, event.at, name),
        Channel.AI_DETECTION,
        Priority.ALARM_EVENT,
        {},
    )


def birth_candidate(
    now: datetime,
    manifest: Manifest,
    consent: Mapping[str, str],
    audio_on: bool,
    agent_version: str,
    protocol: str,
    session: int,
    topics: Topics,
) -> Candidate:
    """The retained declaration: policy version, enabled purposes, topics; no personal data."""
    degraded = [] if protocol == "5" else ["no PUBACK reason codes: refusals look like success"]
    return Candidate(
        Purpose.AGENT,
        {
            FieldName.POLICY_VERSION: manifest.version,
            FieldName.ENABLED_PURPOSES: [p.value for p in manifest.enabled_purposes(consent)],
            FieldName.AGENT_VERSION: agent_version,
            FieldName.SESSION_COUNTER: session,
            FieldName.DECLARATION: {
                "protocol": protocol,
                "degraded": degraded,
                "audio": "on" if audio_on else "off",
                "consent": dict(consent),
                "disabled": manifest.disabled_summary(),
                "manifest_sha256": manifest.digest,
                "topics": {channel.name.lower(): topics.of(channel) for channel in Channel},
            },
        },
        now,
    )


def command_result_candidate(
    now: datetime, command_id: str, ok: bool, reason: str, status: Mapping[str, object] | None
) -> Candidate:
    fields: dict[FieldName | str, object] = {
        FieldName.COMMAND_RESULT: {"id": command_id, "ok": ok, "reason": reason}
    }
    if status is not None:
        fields[FieldName.AGENT_STATUS] = dict(status)
    return Candidate(Purpose.AGENT, fields, now)


def outbox_item(item: Release) -> OutboxItem:
    return OutboxItem(
        record_id=item.record_id,
        topic=item.topic,
        payload=item.payload,
        qos=item.qos,
        retain=item.retain,
        purpose=item.purpose,
        priority=item.priority,
        created_at=item.created_at,
        expires_at=item.expires_at,
        policy_version=item.policy_version,
        clause=item.clause,
    )


def clip_payload_for_sending(payload: bytes, audio_allowed: bool) -> tuple[bytes | None, bool]:
    """Rule 5 at send time on a queued clip envelope: (the payload to send, whether an audio
    track was stripped). None: refuse it: the envelope does not parse, or its clip fails
    ``enforce_audio_rule`` (fail closed: a clip that cannot be checked does not leave)."""
    import base64

    from edge.shell.clip import enforce_audio_rule

    try:
        body = json.loads(payload)
        data = body["data"]
        clip = base64.b64decode(data[FieldName.EVENT_CLIP.value]["b64"], validate=True)
    except (ValueError, KeyError, TypeError):
        return None, False
    outcome = enforce_audio_rule(clip, audio_allowed)
    if outcome.clip is None:
        return None, outcome.stripped
    if not audio_allowed and FieldName.AUDIO_TRACK.value in data:
        del data[FieldName.AUDIO_TRACK.value]
    elif not outcome.stripped:
        return payload, False
    data[FieldName.EVENT_CLIP.value]["b64"] = base64.b64encode(outcome.clip).decode()
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(), True


def media_checked(decision: Decision) -> tuple[Decision, dict[str, int]]:
    """Every outgoing clip is inspected before it is queued (``enforce_audio_rule``, the
    same rule as at send time): one with audio it may not carry is stripped, and refused
    if it still does not pass (fail closed: the decision then keeps nothing). Returns the
    decision to release and what was counted."""
    from edge.shell.clip import enforce_audio_rule

    clip = decision.kept.get(FieldName.EVENT_CLIP)
    if not isinstance(clip, bytes):
        return decision, {}
    outcome = enforce_audio_rule(clip, FieldName.AUDIO_TRACK in decision.kept)
    counts = {"audio_tracks_stripped": 1} if outcome.stripped else {}
    if outcome.clip is None:
        counts["clips_refused"] = 1
        return replace(decision, kept={}, clauses={}, retention=None), counts
    kept = {**decision.kept, FieldName.EVENT_CLIP: outcome.clip}
    return replace(decision, kept=kept), counts
