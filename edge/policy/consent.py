"""Pure: consent as a local, authoritative state machine.

Theory of operation. Each consent-based purpose of the accepted version (EN 2023 rows
17, 18, 19, 23) is off until granted. The state is a value; every change returns a new
state, which the shell persists (``consent_file``) before anything else happens.

Rules:
1. A grant needs a receipt signed by the app key provisioned at enrolment, naming this
   device, the purpose, the accepted policy version, an issue time no older than
   ``max_age`` (and not in the future beyond 5 minutes of clock skew), and a counter higher
   than any accepted before. Anything else is refused with the reason.
2. A withdrawal needs no signature (any authenticated channel, or the device button) and
   takes effect at once.
3. A consent holds only under the version it was given (or carried) under. Switching
   version carries a consent only if the new version discloses the same purpose on a
   consent basis; otherwise it lapses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.errors import InputError
from edge.model import ConsentStatus, Purpose
from edge.policy.receipts import SignedReceipt, verify_signature

if TYPE_CHECKING:
    from edge.policy.manifest import Manifest

CLOCK_SKEW = timedelta(minutes=5)
GRANTED = ConsentStatus.GRANTED
WITHDRAWN = ConsentStatus.WITHDRAWN
LAPSED = ConsentStatus.LAPSED
NEVER = ConsentStatus.NEVER


@dataclass(frozen=True, slots=True)
class ConsentEntry:
    status: ConsentStatus  # granted | withdrawn | lapsed
    policy_version: str
    since: str  # ISO time of the change
    source: str  # "receipt #4", "command", "device button", "policy switch"


@dataclass(frozen=True, slots=True)
class ConsentState:
    entries: Mapping[str, ConsentEntry] = field(default_factory=dict)
    last_counter: int = 0


@dataclass(frozen=True, slots=True)
class GrantResult:
    state: ConsentState
    accepted: bool
    reason: str


def consent_status(state: ConsentState, purpose: Purpose, manifest: Manifest) -> ConsentStatus:
    """granted / withdrawn / lapsed / never, under ``manifest``'s version."""
    entry = state.entries.get(purpose.value)
    if entry is None:
        return NEVER
    if entry.status == GRANTED and entry.policy_version != manifest.version:
        return LAPSED
    return entry.status


def is_granted(state: ConsentState, purpose: Purpose, manifest: Manifest) -> bool:
    return consent_status(state, purpose, manifest) == GRANTED


def grant(
    state: ConsentState,
    receipt: SignedReceipt,
    app_key: Ed25519PublicKey,
    device_serial: str,
    manifest: Manifest,
    now: datetime,
    max_age: timedelta,
) -> GrantResult:
    """Rule 1. Never raises for a bad receipt: the result says why it was refused."""
    body = receipt.body

    def refuse(reason: str) -> GrantResult:
        return GrantResult(state, False, reason)

    if not verify_signature(receipt, app_key):
        return refuse("forged: the signature does not verify with the enrolled app key")
    if body.device_serial != device_serial:
        return refuse(
            f"wrong device: the receipt is for {body.device_serial}, this is {device_serial}"
        )
    if body.purpose not in Purpose.__members__.values():
        return refuse(f"unknown purpose {body.purpose!r}")
    purpose = Purpose(body.purpose)
    if not manifest.is_consent_purpose(purpose):
        return refuse(f"policy {manifest.version} has no consent-based purpose {purpose.value!r}")
    if body.policy_version != manifest.version:
        return refuse(
            f"the receipt names policy {body.policy_version}, "
            f"the accepted version is {manifest.version}"
        )
    if body.issued_at > now + CLOCK_SKEW:
        return refuse(f"issued in the future ({body.issued_at.isoformat()})")
    if now - body.issued_at > max_age:
        return refuse(f"expired: issued {body.issued_at.isoformat()}, older than {max_age}")
    if body.counter <= state.last_counter:
        return refuse(f"replayed: counter {body.counter} is not above {state.last_counter}")
    entries = dict(state.entries)
    entries[purpose.value] = ConsentEntry(
        GRANTED, manifest.version, now.isoformat(), f"receipt #{body.counter}"
    )
    return GrantResult(
        ConsentState(entries, body.counter),
        True,
        f"granted: {purpose.value} under {manifest.version}",
    )


def withdraw(
    state: ConsentState, purpose: Purpose, now: datetime, source: str
) -> tuple[ConsentState, bool]:
    """Rule 2. Returns the new state and whether anything was granted before."""
    entry = state.entries.get(purpose.value)
    was_granted = entry is not None and entry.status == GRANTED
    entries = dict(state.entries)
    entries[purpose.value] = ConsentEntry(
        WITHDRAWN, entry.policy_version if entry else "", now.isoformat(), source
    )
    return replace(state, entries=entries), was_granted


def switch_version(
    state: ConsentState, old: Manifest, new: Manifest, now: datetime
) -> ConsentState:
    """Rule 3: carry consents the new version discloses on consent; let the others lapse."""
    entries = dict(state.entries)
    for key, entry in state.entries.items():
        if entry.status != GRANTED:
            continue
        purpose = Purpose(key)
        if new.is_consent_purpose(purpose):
            entries[key] = replace(
                entry,
                policy_version=new.version,
                source=f"{entry.source}, carried to {new.version}",
            )
        else:
            entries[key] = ConsentEntry(
                LAPSED, old.version, now.isoformat(), f"policy switch to {new.version}"
            )
    return replace(state, entries=entries)


def to_json(state: ConsentState) -> str:
    return json.dumps(
        {
            "last_counter": state.last_counter,
            "entries": {
                key: {
                    "status": e.status,
                    "policy_version": e.policy_version,
                    "since": e.since,
                    "source": e.source,
                }
                for key, e in sorted(state.entries.items())
            },
        },
        indent=1,
    )


def from_json(text: str) -> ConsentState:
    """Raises InputError on anything malformed (the caller treats it as a corrupt store)."""
    try:
        data = json.loads(text)
        entries = {}
        for key, raw in data["entries"].items():
            if key not in Purpose.__members__.values():
                raise InputError(f"consent: unknown purpose {key!r}")
            raw_status = str(raw["status"])
            if raw_status not in {GRANTED, WITHDRAWN, LAPSED}:
                raise InputError(f"consent.{key}.status: unknown status {raw_status!r}")
            status = ConsentStatus(raw_status)
            entries[key] = ConsentEntry(
                status, str(raw["policy_version"]), str(raw["since"]), str(raw["source"])
            )
        counter = data["last_counter"]
        if not isinstance(counter, int):
            raise InputError("consent.last_counter: expected an integer")
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise InputError(f"consent state is malformed: {err}") from err
    return ConsentState(entries, counter)


def snapshot(state: ConsentState, manifest: Manifest) -> dict[str, ConsentStatus]:
    """purpose -> status for every consent-based purpose of the version (audit, birth)."""
    return {p.value: consent_status(state, p, manifest) for p in manifest.consent_purposes()}
