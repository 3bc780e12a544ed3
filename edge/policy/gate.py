"""Pure: the policy gate. Decides, field by field, what of a candidate message may leave.

Theory of operation. A candidate names one purpose and carries the fields the device
could send. ``decide`` keeps a field only if every rule below lets it through, and says
for every removed field why. A denial is a value, never an exception.

Rules:
1. Default deny: a field leaves only if the accepted version's manifest has a clause for
   (purpose, field). Unknown field names and mistyped values are removed.
2. A purpose the version does not disclose removes every field (NOT_DISCLOSED).
3. A consent-based clause holds only while consent for its purpose is granted under this
   version; otherwise the field is removed (NO_CONSENT, or CONSENT_WITHDRAWN if it was
   granted once and withdrawn).
4. The audio track is removed whenever the audio toggle is off (AUDIO_OFF), whatever the
   version says; under a version without an audio clause it is NOT_DISCLOSED.
5. A candidate older than its retention is expired: nothing of it leaves (EXPIRED).
6. ``Purpose.AGENT`` may carry only the agent's non-personal metadata fields.
7. If evaluation itself fails, nothing leaves (FAILED) and the caller counts it.
8. A candidate may name its primary field (the snapshot of a snapshot message); if that
   field is removed, the rest is removed too (PRIMARY_REMOVED): an alarm snapshot message
   without its snapshot would be noise, not information.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from edge.model import ConsentStatus, Purpose
from edge.policy.catalogue import CATALOGUE, FieldName, field_of, has_kind
from edge.policy.consent import ConsentState, consent_status
from edge.policy.manifest import Basis, Manifest


class Reason(StrEnum):
    NOT_DISCLOSED = "not_disclosed"
    NO_CONSENT = "no_consent"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    AUDIO_OFF = "audio_off"
    EXPIRED = "expired"
    UNKNOWN_FIELD = "unknown_field"
    WRONG_TYPE = "wrong_type"
    UNKNOWN_PURPOSE = "unknown_purpose"
    FAILED = "failed"
    PRIMARY_REMOVED = "primary_removed"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A message the device would like to send: one purpose, its fields, when it was made."""

    purpose: Purpose
    fields: Mapping[FieldName | str, object]
    created_at: datetime
    primary: FieldName | None = None  # the field the message exists for (rule 8)


@dataclass(frozen=True, slots=True)
class Decision:
    """What may leave: kept fields with their clauses, removed fields with their reasons."""

    purpose: Purpose
    kept: Mapping[FieldName, object]
    clauses: Mapping[FieldName, str]
    removed: Mapping[str, Reason]
    policy_version: str
    manifest_digest: str
    retention: timedelta | None = None
    failure: str = field(default="")

    @property
    def allowed(self) -> bool:
        """True when something worth sending remains (not only agent metadata bookkeeping)."""
        return bool(self.kept)


def _purpose_or_agent(value: object) -> Purpose:
    return value if isinstance(value, Purpose) else Purpose.AGENT


def _deny_all(
    candidate: Candidate, manifest: Manifest, reason: Reason, failure: str = ""
) -> Decision:
    return Decision(
        purpose=_purpose_or_agent(candidate.purpose),
        kept={},
        clauses={},
        removed={str(name): reason for name in candidate.fields},
        policy_version=manifest.version,
        manifest_digest=manifest.digest,
        failure=failure,
    )


def decide(
    candidate: Candidate,
    manifest: Manifest,
    consent: ConsentState,
    audio_on: bool,
    now: datetime,
) -> Decision:
    """Apply the rules of the module docstring to one candidate.

    Never raises for a policy reason; if evaluation fails unexpectedly, the decision
    keeps nothing and carries the failure (rule 7).
    """
    try:
        return _decide(candidate, manifest, consent, audio_on, now)
    except Exception as err:  # noqa: BLE001 - fail closed: nothing leaves, the caller counts it
        return _deny_all(candidate, manifest, Reason.FAILED, f"{type(err).__name__}: {err}")


def _decide(
    candidate: Candidate, manifest: Manifest, consent: ConsentState, audio_on: bool, now: datetime
) -> Decision:
    raw_purpose: object = candidate.purpose  # callers may break the type contract
    if not isinstance(raw_purpose, Purpose):
        return _deny_all(candidate, manifest, Reason.UNKNOWN_PURPOSE)
    purpose = raw_purpose
    if not manifest.discloses(purpose):
        return _deny_all(candidate, manifest, Reason.NOT_DISCLOSED)
    kept: dict[FieldName, object] = {}
    clauses: dict[FieldName, str] = {}
    removed: dict[str, Reason] = {}
    retentions: list[timedelta] = []
    status = consent_status(consent, purpose, manifest)
    for raw_name, value in candidate.fields.items():
        name = field_of(raw_name)
        if name is None:
            removed[str(raw_name)] = Reason.UNKNOWN_FIELD
            continue
        clause = manifest.clause_for(purpose, name)
        if clause is None:
            removed[name.value] = Reason.NOT_DISCLOSED
            continue
        if clause.basis is Basis.CONSENT and status is not ConsentStatus.GRANTED:
            removed[name.value] = (
                Reason.CONSENT_WITHDRAWN if status is ConsentStatus.WITHDRAWN else Reason.NO_CONSENT
            )
            continue
        if name is FieldName.AUDIO_TRACK and not audio_on:
            removed[name.value] = Reason.AUDIO_OFF
            continue
        if not has_kind(CATALOGUE[name], value):
            removed[name.value] = Reason.WRONG_TYPE
            continue
        kept[name] = value
        clauses[name] = clause.id
        if clause.retention is not None:
            retentions.append(clause.retention)
    retention = min(retentions) if retentions else None
    if retention is not None and now - candidate.created_at > retention:
        return _deny_all(candidate, manifest, Reason.EXPIRED)
    primary = field_of(candidate.primary) if candidate.primary is not None else None
    if primary is not None and primary not in kept:
        # Rule 8: without its main field a message is not worth sending.
        for name in kept:
            removed[name.value] = Reason.PRIMARY_REMOVED
        kept, clauses, retention = {}, {}, None
    return Decision(
        purpose=purpose,
        kept=kept,
        clauses=clauses,
        removed=removed,
        policy_version=manifest.version,
        manifest_digest=manifest.digest,
        retention=retention,
    )
