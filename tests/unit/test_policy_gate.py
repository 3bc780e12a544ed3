"""The policy gate: deny by default, field by field, purpose by purpose, consent and audio now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.model import Purpose
from edge.policy.catalogue import CATALOGUE, FieldName, Kind
from edge.policy.consent import ConsentState, grant, withdraw
from edge.policy.gate import Candidate, Reason, decide
from edge.policy.manifest import Basis
from edge.policy.receipts import ReceiptBody, sign_receipt
from edge.shell.shipped import list_versions, load_manifest

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()
SERIAL = "SN0001"

SAMPLE: dict[Kind, object] = {
    Kind.TEXT: "x",
    Kind.NUMBER: 1,
    Kind.FLAG: True,
    Kind.RECORD: {"a": 1},
    Kind.LIST: ["a"],
    Kind.JPEG: b"\xff\xd8jpeg",
    Kind.CLIP: b"mp4",
}


def _value(name: FieldName) -> object:
    return SAMPLE[CATALOGUE[name].kind]


def _everything(purpose: Purpose) -> Candidate:
    return Candidate(purpose, {name: _value(name) for name in FieldName}, NOW)


def _granted(version: str, *purposes: Purpose) -> ConsentState:
    manifest = load_manifest(version)
    state = ConsentState()
    for i, purpose in enumerate(purposes, start=1):
        body = ReceiptBody(SERIAL, purpose.value, version, NOW, i)
        result = grant(
            state,
            sign_receipt(KEY, body),
            KEY.public_key(),
            SERIAL,
            manifest,
            NOW,
            timedelta(days=1),
        )
        assert result.accepted, result.reason
        state = result.state
    return state


CONSENT_PURPOSES = (
    Purpose.AI_DETECTION,
    Purpose.DEVICE_AI,
    Purpose.DIAGNOSTICS,
    Purpose.DEVICE_LOG,
)

# version x purpose x consent -> the fields that may leave (the whole table of the product).
CASES = [
    (
        "en-2020-01-19",
        Purpose.NOTIFICATION,
        False,
        {"serial_number", "push_notice_id", "alarm_snapshot", "alarm_event"},
    ),
    ("en-2020-01-19", Purpose.CLOUD_STORAGE, True, {"serial_number", "event_clip", "channel_info"}),
    ("en-2020-01-19", Purpose.DIAGNOSTICS, True, set()),
    ("en-2020-01-19", Purpose.DEVICE_AI, True, set()),
    ("fr-2020-02-13", Purpose.NOTIFICATION, True, set()),
    ("fr-2020-02-13", Purpose.CLOUD_STORAGE, True, set()),
    (
        "fr-2020-02-13",
        Purpose.DEVICE_STATUS,
        False,
        {
            "mac_address",
            "ip_address",
            "serial_number",
            "model",
            "firmware_version",
            "country",
            "location",
            "registration_date",
            "channel_info",
            "online_status",
            "configuration",
        },
    ),
    (
        "th-2020-01-19",
        Purpose.NOTIFICATION,
        False,
        {"serial_number", "push_notice_id", "alarm_snapshot", "alarm_event"},
    ),
    ("pl-2021-09-13", Purpose.DEVICE_LOG, True, set()),
    (
        "en-2023-01-10",
        Purpose.NOTIFICATION,
        False,
        {
            "serial_number",
            "device_unique_id",
            "mac_address",
            "push_notice_id",
            "alarm_snapshot",
            "alarm_event",
        },
    ),
    (
        "en-2023-01-10",
        Purpose.CLOUD_STORAGE,
        False,
        {"serial_number", "event_clip", "channel_info", "audio_track"},
    ),
    ("en-2023-01-10", Purpose.DEVICE_AI, False, set()),
    (
        "en-2023-01-10",
        Purpose.DEVICE_AI,
        True,
        {"serial_number", "plate_number", "ai_human", "ai_vehicle", "ai_pet"},
    ),
    ("en-2023-01-10", Purpose.DIAGNOSTICS, False, set()),
    (
        "en-2023-01-10",
        Purpose.DIAGNOSTICS,
        True,
        {
            "mac_address",
            "network_type",
            "operation_log",
            "network_log",
            "error_data",
            "system_status",
            "performance_data",
        },
    ),
    ("en-2023-01-10", Purpose.AI_DETECTION, True, {"event_clip"}),
    ("en-2023-01-10", Purpose.DEVICE_LOG, True, {"serial_number", "device_log"}),
    (
        "en-2023-01-10",
        Purpose.AGENT,
        False,
        {
            "policy_version",
            "enabled_purposes",
            "agent_version",
            "session_counter",
            "declaration",
            "drop_counters",
            "command_result",
            "agent_status",
            "audit_checkpoint",
        },
    ),
]


@pytest.mark.parametrize(("version", "purpose", "consented", "expected"), CASES)
def test_decide_keeps_exactly_what_the_version_discloses(
    version: str, purpose: Purpose, consented: bool, expected: set[str]
) -> None:
    consent = (
        _granted(version, *CONSENT_PURPOSES)
        if consented and version == "en-2023-01-10"
        else ConsentState()
    )
    decision = decide(_everything(purpose), load_manifest(version), consent, True, NOW)
    assert {f.value for f in decision.kept} == expected
    assert set(decision.removed) == {f.value for f in FieldName} - expected
    assert decision.policy_version == version
    for name in decision.kept:
        assert decision.clauses[name].startswith(("agent#", f"{version}#row"))


def test_decide_names_the_reason_for_every_removed_field() -> None:
    manifest = load_manifest("en-2023-01-10")
    candidate = Candidate(
        Purpose.CLOUD_STORAGE,
        {
            FieldName.EVENT_CLIP: b"mp4",
            FieldName.AUDIO_TRACK: {"codec": "aac"},
            FieldName.PLATE_NUMBER: "X",
            "gps": 1,
            FieldName.SERIAL_NUMBER: 5,
        },
        NOW,
    )
    decision = decide(candidate, manifest, ConsentState(), False, NOW)
    assert decision.removed == {
        "audio_track": Reason.AUDIO_OFF,
        "plate_number": Reason.NOT_DISCLOSED,
        "gps": Reason.UNKNOWN_FIELD,
        "serial_number": Reason.WRONG_TYPE,
    }
    assert decision.kept == {FieldName.EVENT_CLIP: b"mp4"}
    assert decision.clauses == {FieldName.EVENT_CLIP: "en-2023-01-10#row12"}


def test_decide_audio_track_needs_a_version_that_discloses_audio() -> None:
    candidate = Candidate(
        Purpose.CLOUD_STORAGE,
        {FieldName.AUDIO_TRACK: {"codec": "aac"}, FieldName.EVENT_CLIP: b"x"},
        NOW,
    )
    decision = decide(candidate, load_manifest("en-2020-01-19"), ConsentState(), True, NOW)
    assert decision.removed["audio_track"] is Reason.NOT_DISCLOSED


def test_decide_withdrawn_consent_is_named_as_such() -> None:
    state = _granted("en-2023-01-10", Purpose.DIAGNOSTICS)
    state, _ = withdraw(state, Purpose.DIAGNOSTICS, NOW, "command")
    candidate = Candidate(Purpose.DIAGNOSTICS, {FieldName.ERROR_DATA: []}, NOW)
    decision = decide(candidate, load_manifest("en-2023-01-10"), state, True, NOW)
    assert decision.removed == {"error_data": Reason.CONSENT_WITHDRAWN}
    assert not decision.allowed


def test_decide_expired_alarm_leaves_nothing() -> None:
    candidate = Candidate(
        Purpose.NOTIFICATION, {FieldName.ALARM_EVENT: {"type": "motion"}}, NOW - timedelta(days=8)
    )
    decision = decide(candidate, load_manifest("pl-2021-09-13"), ConsentState(), True, NOW)
    assert decision.removed == {"alarm_event": Reason.EXPIRED}
    assert decision.kept == {}


def test_decide_primary_field_removed_removes_the_rest() -> None:
    candidate = Candidate(
        Purpose.CLOUD_STORAGE,
        {FieldName.SERIAL_NUMBER: SERIAL, FieldName.EVENT_CLIP: b"mp4"},
        NOW,
        primary=FieldName.EVENT_CLIP,
    )
    decision = decide(candidate, load_manifest("fr-2020-02-13"), ConsentState(), True, NOW)
    assert decision.kept == {}
    ok = decide(candidate, load_manifest("th-2020-01-19"), ConsentState(), True, NOW)
    assert set(ok.kept) == {FieldName.SERIAL_NUMBER, FieldName.EVENT_CLIP}


def test_decide_unknown_purpose_fails_closed() -> None:
    candidate = Candidate("marketing", {FieldName.SERIAL_NUMBER: SERIAL}, NOW)  # type: ignore[arg-type]
    decision = decide(candidate, load_manifest("en-2023-01-10"), ConsentState(), True, NOW)
    assert decision.kept == {}
    assert decision.removed == {"serial_number": Reason.UNKNOWN_PURPOSE}


def test_decide_failure_inside_evaluation_keeps_nothing() -> None:
    class Exploding(dict[str, object]):
        def items(self):
            raise RuntimeError("boom")

        def __iter__(self):
            return iter(["serial_number"])

    candidate = Candidate(Purpose.DEVICE_STATUS, Exploding(), NOW)
    decision = decide(candidate, load_manifest("en-2023-01-10"), ConsentState(), True, NOW)
    assert decision.kept == {}
    assert decision.removed == {"serial_number": Reason.FAILED}
    assert "boom" in decision.failure


def test_decide_agent_purpose_never_carries_personal_fields() -> None:
    decision = decide(
        _everything(Purpose.AGENT), load_manifest("en-2023-01-10"), ConsentState(), True, NOW
    )
    assert all(not CATALOGUE[name].personal for name in decision.kept)
    assert decision.removed["serial_number"] is Reason.NOT_DISCLOSED


# -- properties -----------------------------------------------------------------------

field_names = st.sampled_from([f.value for f in FieldName] + ["gps", "email", ""])
values = st.one_of(
    st.text(max_size=5),
    st.integers(),
    st.booleans(),
    st.binary(max_size=5),
    st.just({"a": 1}),
    st.just(["x"]),
)
candidates = st.builds(
    Candidate,
    purpose=st.sampled_from(list(Purpose)),
    fields=st.dictionaries(field_names, values, max_size=8),
    created_at=st.just(NOW) | st.just(NOW - timedelta(days=30)),
)
consents = st.lists(st.sampled_from(CONSENT_PURPOSES), unique=True).map(
    lambda ps: _granted("en-2023-01-10", *ps)
)


@settings(max_examples=300, deadline=None)
@given(candidates, st.sampled_from(list_versions()), consents, st.booleans())
def test_decide_kept_fields_are_a_subset_of_what_manifest_and_consent_allow(
    candidate: Candidate, version: str, consent: ConsentState, audio_on: bool
) -> None:
    manifest = load_manifest(version)
    decision = decide(candidate, manifest, consent, audio_on, NOW)
    for name in decision.kept:
        clause = manifest.clause_for(candidate.purpose, name)
        assert clause is not None
        if clause.basis is Basis.CONSENT:
            assert consent.entries[candidate.purpose.value].status == "granted"
            assert version == "en-2023-01-10"
        if name is FieldName.AUDIO_TRACK:
            assert audio_on
    assert set(map(str, decision.kept)) | set(decision.removed) == set(map(str, candidate.fields))


@settings(max_examples=200, deadline=None)
@given(candidates, consents, st.sampled_from(CONSENT_PURPOSES))
def test_decide_withdrawal_never_increases_what_leaves(
    candidate: Candidate, consent: ConsentState, purpose: Purpose
) -> None:
    manifest = load_manifest("en-2023-01-10")
    before = decide(candidate, manifest, consent, True, NOW)
    after_state, _ = withdraw(consent, purpose, NOW, "test")
    after = decide(candidate, manifest, after_state, True, NOW)
    assert set(after.kept) <= set(before.kept)
