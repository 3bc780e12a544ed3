"""Pure: which purposes must stop when consent, the policy version or a toggle changes.

Design rule 4: a purpose that may no longer send stops *at once*: its unsent items are
purged, its in-flight items forgotten, its retained topics cleared, and each step is
recorded. A withdrawal, a consent lapsed by a policy switch and a version that discloses
less all come down to the same question, answered here once, so that no path can forget
a step (a policy switch once left the retained diagnostics on the broker because it
decided "what stops" apart from the withdrawal).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.audit import AuditEvent
from edge.commands import (
    AcceptPolicy,
    Command,
    GrantConsent,
    Refused,
    RequestStatus,
    SetAudio,
    WithdrawConsent,
)
from edge.errors import InputError
from edge.model import Purpose
from edge.policy import audio as audio_policy
from edge.policy.consent import ConsentState, grant, snapshot, switch_version, withdraw
from edge.policy.manifest import Manifest
from edge.policy.receipts import parse_receipt


def enabled(manifest: Manifest, consent: Mapping[str, str]) -> frozenset[Purpose]:
    """The purposes that may send now under ``manifest`` and the consent snapshot."""
    return frozenset(manifest.enabled_purposes(consent))


def purposes_to_stop(
    before: frozenset[Purpose],
    after: frozenset[Purpose],
    withdrawn: Iterable[Purpose] = (),
) -> list[Purpose]:
    """Every purpose enabled before and not after, plus those withdrawn explicitly (a user
    may withdraw what was never granted: its queue and retained topics go all the same),
    in enum order. The agent's own purpose never stops."""
    stop = (before - after) | frozenset(withdrawn)
    return [p for p in Purpose if p in stop and p is not Purpose.AGENT]


# -- decisions as data -----------------------------------------------------------------
#
# The shell resolves what needs I/O (the receipt key, the new version's manifest), asks
# one of the functions below what a command means, and carries out the effects in the
# order given (``edge.shell.executor.Executor.apply``). The rules (what a withdrawal stops,
# what a switch lets lapse, when audio is refused) live here once, with no I/O.


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What the commands change: the accepted version, the consents and the user's audio
    toggle (None: the version's default). ``audio_hard_off``: the config's
    ``audio.enabled = false``, which no command overrides."""

    manifest: Manifest
    consent: ConsentState
    audio_toggle: bool | None
    audio_hard_off: bool = False

    @property
    def audio_on(self) -> bool:
        """The audio toggle as the capture side must obey it (design.md rule 5)."""
        if self.audio_hard_off:
            return False
        return audio_policy.may_open_microphone(self.manifest, self.audio_toggle)


@dataclass(frozen=True, slots=True)
class StopPurpose:
    """Rule 4: forget its in-flight items, purge its queued ones, clear its retained
    topics; each step recorded."""

    purpose: Purpose
    why: str


@dataclass(frozen=True, slots=True)
class SaveConsent:
    """Persist the consent state. ``required``: a grant that is not on disk must not take
    effect (after a reboot the device would not know it); otherwise (a withdrawal, a lapse)
    the change holds at once and a failed save is retried until it holds."""

    required: bool = False


@dataclass(frozen=True, slots=True)
class SaveToggles:
    """Persist the accepted version and the audio toggle."""


@dataclass(frozen=True, slots=True)
class DropHeldAudio:
    """Audio is off now: forget microphone samples held for the next clip."""


@dataclass(frozen=True, slots=True)
class Record:
    """An audit record about the agent."""

    event: AuditEvent
    detail: str


@dataclass(frozen=True, slots=True)
class PublishBirth:
    """The birth (retained) says what the device does now: re-publish it if connected."""


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer a command on ``cmd/result``; ``status``: attach the status report."""

    command_id: str
    ok: bool
    reason: str
    status: bool = False


Effect = StopPurpose | SaveConsent | SaveToggles | DropHeldAudio | Record | PublishBirth | Reply


@dataclass(frozen=True, slots=True)
class Outcome:
    """The state after a command, and what the shell must do, in order."""

    state: DeviceState
    effects: tuple[Effect, ...]


def refuse(state: DeviceState, command_id: str, reason: str) -> Outcome:
    """Nothing changes; the sender is told why."""
    return Outcome(state, (Reply(command_id, False, reason),))


def grant_consent(
    state: DeviceState,
    command: GrantConsent,
    app_key: Ed25519PublicKey | None,
    serial: str,
    now: datetime,
    max_age: timedelta,
) -> Outcome:
    """A signed receipt grants one purpose (consent rule 1); anything else is refused."""
    if app_key is None:
        return refuse(state, command.id, "no app key was provisioned at enrolment")
    try:
        receipt = parse_receipt(command.receipt)
    except InputError as err:
        return refuse(state, command.id, str(err))
    result = grant(state.consent, receipt, app_key, serial, state.manifest, now, max_age)
    if not result.accepted:
        return Outcome(
            state,
            (
                Record(AuditEvent.CONSENT_REFUSED, result.reason),
                Reply(command.id, False, result.reason),
            ),
        )
    return Outcome(
        replace(state, consent=result.state),
        (
            SaveConsent(required=True),
            Record(AuditEvent.CONSENT_GRANTED, result.reason),
            PublishBirth(),
            Reply(command.id, True, result.reason),
        ),
    )


def withdraw_consent(
    state: DeviceState,
    purpose: Purpose | None,
    source: str,
    command_id: str | None,
    now: datetime,
) -> Outcome:
    """Consent rule 2: at once, no signature needed. ``purpose`` None: every consent held
    (the device button). A purpose withdrawn stops even if it was never granted."""
    consent = state.consent
    before = enabled(state.manifest, snapshot(consent, state.manifest))
    changed = False
    withdrawn: list[Purpose] = []
    records: list[Effect] = []
    for one in [purpose] if purpose is not None else list(Purpose):
        if purpose is None and one.value not in consent.entries:
            continue
        consent, was = withdraw(consent, one, now, source)
        changed = changed or was
        withdrawn.append(one)
        records.append(Record(AuditEvent.CONSENT_WITHDRAWN, f"{one.value} by {source}"))
    after = enabled(state.manifest, snapshot(consent, state.manifest))
    stops = [
        StopPurpose(one, f"consent for {one.value} withdrawn")
        for one in purposes_to_stop(before, after, withdrawn)
    ]
    effects: list[Effect] = [*records, *stops, SaveConsent(), PublishBirth()]
    if command_id is not None:
        label = purpose.value if purpose else "all"
        reason = f"withdrawn: {label}" if changed else f"{label} was not granted"
        effects.append(Reply(command_id, True, reason))
    return Outcome(replace(state, consent=consent), tuple(effects))


def set_audio(state: DeviceState, command: SetAudio) -> Outcome:
    """The audio toggle (EN 2023 row 15): on only where the version discloses audio and
    the device's config allows it; off at once, held samples dropped."""
    if command.on and state.audio_hard_off:
        return refuse(state, command.id, "audio is disabled in this device's configuration")
    if command.on and not state.manifest.discloses_audio():
        reason = f"policy {state.manifest.version} discloses no audio collection"
        return refuse(state, command.id, reason)
    label = "on" if command.on else "off"
    effects: list[Effect] = [SaveToggles()]
    if not command.on:
        effects.append(DropHeldAudio())
    effects += [
        Record(AuditEvent.AUDIO_TOGGLED, label),
        PublishBirth(),
        Reply(command.id, True, f"audio {label}"),
    ]
    return Outcome(replace(state, audio_toggle=command.on), tuple(effects))


def accept_policy(state: DeviceState, command_id: str, new: Manifest, now: datetime) -> Outcome:
    """Rule 6: the new version takes effect before the next message leaves. Consents it
    does not carry lapse; whatever it does not let send stops, retained topics included;
    items queued under the old version for a purpose not disclosed now are purged even if
    it was never enabled (a queue restored from an older run)."""
    old = state.manifest
    before = enabled(old, snapshot(state.consent, old))
    consent = switch_version(state.consent, old, new, now)
    after = enabled(new, snapshot(consent, new))
    never = frozenset(p for p in Purpose if not new.discloses(p))
    switched = replace(state, manifest=new, consent=consent)
    effects: list[Effect] = [SaveToggles(), SaveConsent()]
    effects += [
        StopPurpose(purpose, f"policy version switched to {new.version}")
        for purpose in purposes_to_stop(before, after, never)
    ]
    if not switched.audio_on:
        effects.append(DropHeldAudio())
    effects += [
        Record(AuditEvent.POLICY_SWITCHED, f"{old.version} -> {new.version}"),
        PublishBirth(),
        Reply(command_id, True, f"accepted {new.version}"),
    ]
    return Outcome(switched, tuple(effects))


@dataclass(frozen=True, slots=True)
class GrantRules:
    """What a consent receipt is checked against: the app's key (None: none was
    provisioned, every grant is refused), the device's serial, the receipt's maximum age."""

    app_key: Ed25519PublicKey | None
    serial: str
    max_age: timedelta


def decide(
    state: DeviceState,
    command: Command | Refused,
    now: datetime,
    rules: GrantRules,
    new_manifest: Manifest | str | None = None,
) -> Outcome:
    """What a parsed command means. ``new_manifest``: for ``AcceptPolicy``, the version's
    manifest as the shell loaded it, or why it could not (refused, nothing changes)."""
    if isinstance(command, Refused):
        return refuse(state, command.id, command.reason)
    if isinstance(command, GrantConsent):
        return grant_consent(state, command, rules.app_key, rules.serial, now, rules.max_age)
    if isinstance(command, WithdrawConsent):
        return withdraw_consent(state, command.purpose, "command", command.id, now)
    if isinstance(command, SetAudio):
        return set_audio(state, command)
    if isinstance(command, AcceptPolicy):
        if isinstance(new_manifest, Manifest):
            return accept_policy(state, command.id, new_manifest, now)
        return refuse(state, command.id, new_manifest or f"cannot load {command.version!r}")
    if isinstance(command, RequestStatus):
        return Outcome(state, (Reply(command.id, True, "status", status=True),))
    raise AssertionError(f"unhandled command {command!r}")  # pragma: no cover - mypy exhaustive
