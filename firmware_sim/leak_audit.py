"""Shell (reads files, decodes media): the independent leak audit.

It checks every message an observer received on the broker against the manifest of the
policy version in force at that moment. It shares NO code with the agent's gate: it
reads the manifest TOML files itself, keeps its own list of channels and agent fields,
parses clips with PyAV itself, and measures plate detail itself (the idea of
``../shared/tools/plate_eval.py``: detail at character scale that is still there).

Findings: an undisclosed topic or field; a consent-based field without consent, or after
its withdrawal; a message sent under a version not in force; an alarm older than its
retention; an audio stream when audio is off or undisclosed; a readable plate.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from firmware_sim.runner import RunRecord

MANIFESTS = Path(__file__).resolve().parents[1] / "edge" / "manifests"
MANIFEST_VERSIONS = frozenset(p.stem for p in MANIFESTS.glob("*.toml"))

# The checker's own view of the contract (docs/mqtt.md), not the agent's code.
CHANNEL_PURPOSES = {
    "telemetry": {"device_status"},
    "alarm/event": {"notification"},
    "alarm/snapshot": {"notification"},
    "clip": {"cloud_storage", "ai_detection"},
    "ai/detection": {"device_ai"},
    "ai/plate": {"device_ai"},
    "diagnostics": {"diagnostics"},
    "log": {"device_log"},
    "counters": {"agent"},
    "birth": {"agent"},
    "cmd/result": {"agent"},
    "audit/checkpoint": {"agent"},
}
AGENT_FIELDS = {
    "policy_version",
    "enabled_purposes",
    "agent_version",
    "session_counter",
    "declaration",
    "drop_counters",
    "command_result",
    "agent_status",
    "audit_checkpoint",
}
ENVELOPE_KEYS = {"v", "record_id", "created_at", "policy_version", "purpose", "data"}
PLATE_RESIDUAL_MAX = 0.35  # share of character-scale detail that may remain in a plate
SWITCH_GRACE_S = 1.0  # a message already on the wire when a switch happens


@dataclass(frozen=True, slots=True)
class Finding:
    scenario: str
    topic: str
    problem: str


@dataclass
class AuditSummary:
    checked: int = 0
    images: int = 0
    plates: int = 0
    clips: int = 0
    findings: list[Finding] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Allowed:
    fields: dict[str, dict[str, str]]  # purpose -> field -> basis
    retention_days: dict[str, int]
    audio: bool


@cache
def allowed(version: str) -> Allowed:
    data = tomllib.loads((MANIFESTS / f"{version}.toml").read_text(encoding="utf-8"))
    fields: dict[str, dict[str, str]] = {}
    for row in data.get("rows", []):
        for entry in row["fields"]:
            fields.setdefault(row["purpose"], {})[entry["field"]] = row["basis"]
    retention = data.get("retention", {})
    days = {k: int(v["days"]) for k, v in retention.items() if isinstance(v, dict)}
    default = retention.get("default_days")
    if isinstance(default, int):
        for purpose in fields:
            days.setdefault(purpose, default)
    audio = any("audio_track" in f for f in fields.values())
    return Allowed(fields, days, audio)


def plate_residual(
    original: np.ndarray, received: np.ndarray, box: tuple[int, int, int, int]
) -> float:
    """Share of the plate's character-scale detail still present (1.0: untouched)."""
    x, y, w, h = box
    if received.shape != original.shape:
        received = cv2.resize(
            received, (original.shape[1], original.shape[0]), interpolation=cv2.INTER_AREA
        )
    a = cv2.cvtColor(original[y : y + h, x : x + w], cv2.COLOR_BGR2GRAY).astype(np.float32)
    b = cv2.cvtColor(received[y : y + h, x : x + w], cv2.COLOR_BGR2GRAY).astype(np.float32)
    sigma = max(1.0, h / 8)
    hp_a = a - cv2.GaussianBlur(a, (0, 0), sigma)
    hp_b = b - cv2.GaussianBlur(b, (0, 0), sigma)
    energy = float(np.mean(hp_a**2))
    return float(np.mean(hp_b**2)) / energy if energy > 1e-6 else 0.0


def audio_streams(clip: bytes) -> int | None:
    """Audio streams in a container (None: not a readable container)."""
    import av

    try:
        with av.open(io.BytesIO(clip)) as container:
            return sum(1 for s in container.streams if s.type == "audio")
    except (av.FFmpegError, ValueError):
        return None


def _b64(value: object) -> bytes | None:
    if not isinstance(value, dict) or not isinstance(value.get("b64"), str):
        return None
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        return None


class _State:
    """What is in force at a moment, rebuilt from what the agent answered and did."""

    def __init__(self, record: RunRecord) -> None:
        self.version = record.policy
        self.switched_at = -1e9
        self.switch_pending = False
        self.previous = record.policy
        self.granted = {p for p, status in record.consent_at_start.items() if status == "granted"}
        self.withdrawn_at: dict[str, float] = {}
        self.audio_setting = record.audio_setting

    def audio_on(self) -> bool:
        return allowed(self.version).audio and self.audio_setting is not False

    def request_switch(self, version: str, at: float) -> None:
        """The user's app asked for ``version`` at ``at``: until the agent's answer, a
        message may still be under the old version (it may already be on the wire)."""
        if version != self.version and version in MANIFEST_VERSIONS:
            self.previous, self.version = self.version, version
            self.switched_at = at
            self.switch_pending = True
            for purpose in self.granted:  # a lapse: like a withdrawal, with its grace
                self.withdrawn_at[purpose] = at
            self.granted.clear()

    def in_force(self, at: float) -> set[str]:
        if self.switch_pending or at - self.switched_at < SWITCH_GRACE_S:
            return {self.version, self.previous}
        return {self.version}

    def apply_result(self, result: dict[str, object], at: float) -> None:
        reason = str(result.get("reason", ""))
        if not result.get("ok"):
            return
        if reason.startswith("accepted "):
            if self.switch_pending:
                self.switch_pending = False
                self.switched_at = at
        elif reason.startswith("granted: "):
            self.granted.add(reason.split()[1])
            self.withdrawn_at.pop(reason.split()[1], None)
        elif reason.startswith("withdrawn: "):
            purpose = reason.split()[1]
            targets = set(allowed(self.version).fields) if purpose == "all" else {purpose}
            for one in targets:
                self.granted.discard(one)
                self.withdrawn_at.setdefault(one, at)
        elif reason == "audio off":
            self.audio_setting = False
        elif reason == "audio on":
            self.audio_setting = True

    def button(self, at: float) -> None:
        for purpose in list(self.granted):
            self.withdrawn_at.setdefault(purpose, at)
        self.granted.clear()


def audit_run(record: RunRecord, summary: AuditSummary | None = None) -> AuditSummary:
    """Check every message of one run; findings go into the summary."""
    out = summary or AuditSummary()
    state = _State(record)
    prefix = f"devices/{record.serial}/"
    buttons = sorted(m.real_s for m in record.timeline if m.kind == "input.ButtonPressed")
    switches = sorted(
        (m.real_s, json.loads(m.detail)["argument"])
        for m in record.timeline
        if m.kind == "policy.accept"
    )

    def find(topic: str, problem: str) -> None:
        out.findings.append(Finding(record.scenario, topic, problem))

    if not record.drained:
        # What never reached the broker cannot be audited: a run that never connected,
        # or did not drain, must not pass as "0 findings".
        find(prefix + "#", "the run did not drain: its messages were not all delivered")

    def sim_time(at: float) -> datetime | None:
        before = [m for m in record.timeline if m.real_s <= at]
        if not before:
            return None
        last = before[-1]
        return last.sim_at + timedelta(seconds=(at - last.real_s) * record.speed)

    for message in record.messages:
        at = message.received_monotonic - record.mono0
        while buttons and buttons[0] <= at:
            state.button(buttons.pop(0))
        while switches and switches[0][0] <= at:
            when, version = switches.pop(0)
            state.request_switch(str(version), when)
        out.checked += 1
        topic = message.topic
        if not topic.startswith(prefix):
            find(topic, "message outside the device's own prefix")
            continue
        channel = topic[len(prefix) :]
        if channel == "cmd":
            out.checked -= 1  # inbound: the backend's commands to the device, not device output
            continue
        if channel == "availability":
            try:
                body = json.loads(message.payload)
            except ValueError:
                find(topic, "availability is not JSON")
                continue
            if set(body) != {"state", "session"} or body["state"] not in {
                "online",
                "offline",
                "stopped",
            }:
                find(topic, f"unexpected availability payload keys {sorted(body)}")
            continue
        if channel not in CHANNEL_PURPOSES:
            find(topic, "undisclosed topic")
            continue
        if not message.payload:
            continue  # an empty retained message clears a topic: no data
        try:
            envelope = json.loads(message.payload)
        except ValueError:
            find(topic, "payload is not a JSON envelope")
            continue
        if not isinstance(envelope, dict) or set(envelope) != ENVELOPE_KEYS:
            find(topic, "envelope has unexpected members")
            continue
        purpose = str(envelope["purpose"])
        data = envelope["data"]
        version = str(envelope["policy_version"])
        if purpose not in CHANNEL_PURPOSES[channel]:
            find(topic, f"purpose {purpose!r} on channel {channel!r}")
            continue
        in_force = {state.version} | (
            {state.previous} if at - state.switched_at < SWITCH_GRACE_S else set()
        )
        if version not in in_force:
            find(topic, f"sent under {version} while {state.version} is in force")
            continue
        if (
            channel == "cmd/result"
            and isinstance(data, dict)
            and isinstance(data.get("command_result"), dict)
        ):
            _check_fields(find, topic, purpose, data, version, state, at)
            state.apply_result(data["command_result"], at)
            continue
        if not isinstance(data, dict):
            find(topic, "data is not an object")
            continue
        _check_fields(find, topic, purpose, data, version, state, at)
        days = allowed(version).retention_days.get(purpose)
        moment = sim_time(at)
        try:
            created = datetime.fromisoformat(str(envelope["created_at"]))
        except ValueError:
            find(topic, "created_at is not a time")
            continue
        if (
            days is not None
            and moment is not None
            and moment - created > timedelta(days=days, minutes=5)
        ):
            find(topic, f"{purpose} older than its {days}-day retention ({moment - created})")
        if "alarm_snapshot" in data:
            _check_snapshot(
                find, topic, data["alarm_snapshot"], record, str(envelope["created_at"]), out
            )
        if "event_clip" in data:
            clip = _b64(data["event_clip"])
            out.clips += 1
            streams = audio_streams(clip) if clip is not None else None
            if streams is None:
                find(topic, "clip is not a readable container")
            elif streams and not state.audio_on():
                find(topic, "clip carries an audio stream while audio is off or undisclosed")
            elif streams and "audio_track" not in data:
                find(topic, "clip carries an undeclared audio stream")
    return out


def _check_fields(
    find: Callable[[str, str], None],
    topic: str,
    purpose: str,
    data: dict[str, object],
    version: str,
    state: _State,
    at: float,
) -> None:
    if purpose == "agent":
        extra = set(data) - AGENT_FIELDS
        if extra:
            find(topic, f"agent message carries {sorted(extra)}")
        return
    rules = allowed(version).fields.get(purpose)
    if rules is None:
        find(topic, f"purpose {purpose!r} is not disclosed by {version}")
        return
    for name in data:
        basis = rules.get(name)
        if basis is None:
            find(topic, f"field {name!r} is not disclosed for {purpose} by {version}")
        elif basis == "consent" and purpose not in state.granted:
            when = state.withdrawn_at.get(purpose)
            if when is not None and at > when + SWITCH_GRACE_S:
                find(topic, f"{purpose} field {name!r} after consent was withdrawn")
            elif when is None:
                find(topic, f"{purpose} field {name!r} without consent")


def _check_snapshot(
    find: Callable[[str, str], None],
    topic: str,
    value: object,
    record: RunRecord,
    created_at: str,
    out: AuditSummary,
) -> None:
    jpeg = _b64(value)
    if jpeg is None:
        find(topic, "snapshot is not base64 media")
        return
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        find(topic, "snapshot does not decode")
        return
    out.images += 1
    truth = record.alarms.get(created_at)
    if truth is None:
        return
    for box in truth.plate_boxes:
        out.plates += 1
        residual = plate_residual(truth.frame, image, (box.x, box.y, box.w, box.h))
        if residual > PLATE_RESIDUAL_MAX:
            find(topic, f"readable plate at {box} ({residual:.0%} of its detail left)")
