"""Which purposes stop on a consent or policy change: one answer for every path (pure)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from edge import control
from edge.commands import (
    AcceptPolicy,
    GrantConsent,
    Refused,
    RequestStatus,
    SetAudio,
    WithdrawConsent,
)
from edge.model import ConsentStatus, Purpose
from edge.policy.consent import ConsentEntry, ConsentState
from edge.shell.shipped import load_manifest


def test_a_switch_to_a_version_without_consent_purposes_stops_the_granted_ones() -> None:
    before = control.enabled(load_manifest("en-2023-01-10"), {"diagnostics": "granted"})
    after = control.enabled(load_manifest("en-2020-01-19"), {"diagnostics": "lapsed"})
    assert Purpose.DIAGNOSTICS in before
    assert control.purposes_to_stop(before, after) == [Purpose.DIAGNOSTICS]


def test_a_withdrawal_stops_the_purpose_even_if_it_was_never_granted() -> None:
    manifest = load_manifest("en-2023-01-10")
    same = control.enabled(manifest, {})
    assert control.purposes_to_stop(same, same) == []
    assert control.purposes_to_stop(same, same, [Purpose.DEVICE_LOG]) == [Purpose.DEVICE_LOG]


def test_the_agent_purpose_never_stops() -> None:
    everything = frozenset(Purpose)
    assert Purpose.AGENT not in control.purposes_to_stop(everything, frozenset(), [Purpose.AGENT])


# -- decisions as data: each command's new state and effects ----------------------------

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
RULES = control.GrantRules(None, "SN0001", timedelta(hours=1))


def _granted(version: str, *purposes: Purpose) -> ConsentState:
    return ConsentState(
        {p.value: ConsentEntry(ConsentStatus.GRANTED, version, NOW.isoformat(), "receipt #1")
         for p in purposes},
        last_counter=1,
    )  # fmt: skip


def _device(version: str = "en-2023-01-10", *granted: Purpose) -> control.DeviceState:
    return control.DeviceState(load_manifest(version), _granted(version, *granted), None)


def _stops(outcome: control.Outcome) -> list[Purpose]:
    return [e.purpose for e in outcome.effects if isinstance(e, control.StopPurpose)]


def test_a_withdrawal_and_a_policy_switch_stop_a_purpose_with_the_same_effect() -> None:
    """The bug this replaces: a switch that let diagnostics lapse left its retained topic
    on the broker, because it decided what stops apart from the withdrawal."""
    device = _device("en-2023-01-10", Purpose.DIAGNOSTICS)
    withdrawn = control.decide(device, WithdrawConsent("c1", Purpose.DIAGNOSTICS), NOW, RULES)
    switched = control.decide(
        device, AcceptPolicy("c2", "en-2020-01-19"), NOW, RULES, load_manifest("en-2020-01-19")
    )
    assert _stops(withdrawn) == [Purpose.DIAGNOSTICS]
    assert Purpose.DIAGNOSTICS in _stops(switched)
    lapsed = switched.state.consent.entries[Purpose.DIAGNOSTICS.value].status
    assert lapsed is ConsentStatus.LAPSED
    assert withdrawn.state.consent.entries["diagnostics"].status is ConsentStatus.WITHDRAWN
    for outcome in (withdrawn, switched):
        kinds = [type(e) for e in outcome.effects]
        assert control.SaveConsent in kinds
        assert control.PublishBirth in kinds
        assert isinstance(outcome.effects[-1], control.Reply)
        assert outcome.effects[-1].ok


def test_a_switch_stops_what_the_new_version_does_not_disclose_even_if_never_enabled() -> None:
    device = _device("en-2023-01-10")
    outcome = control.accept_policy(device, "c1", load_manifest("en-2020-01-19"), NOW)
    new = load_manifest("en-2020-01-19")
    stopped = set(_stops(outcome))
    assert {p for p in Purpose if not new.discloses(p) and p is not Purpose.AGENT} <= stopped
    assert outcome.state.manifest.version == "en-2020-01-19"


def test_the_device_button_withdraws_every_consent_held() -> None:
    device = _device("en-2023-01-10", Purpose.DIAGNOSTICS, Purpose.AI_DETECTION)
    outcome = control.withdraw_consent(device, None, "device button", None, NOW)
    assert set(_stops(outcome)) == {Purpose.DIAGNOSTICS, Purpose.AI_DETECTION}
    assert not any(isinstance(e, control.Reply) for e in outcome.effects)


def test_audio_off_drops_held_samples_and_on_is_refused_where_it_may_not_be() -> None:
    device = _device("en-2023-01-10")
    off = control.decide(device, SetAudio("a1", on=False), NOW, RULES)
    assert off.state.audio_toggle is False
    assert not off.state.audio_on
    assert control.DropHeldAudio() in off.effects
    hard_off = dataclasses.replace(device, audio_hard_off=True)
    refused = control.decide(hard_off, SetAudio("a2", on=True), NOW, RULES)
    assert refused.state is hard_off
    assert refused.effects == (
        control.Reply("a2", False, "audio is disabled in this device's configuration"),
    )
    undisclosed = _device("en-2020-01-19")  # discloses no audio collection
    no = control.decide(undisclosed, SetAudio("a3", on=True), NOW, RULES)
    assert no.state is undisclosed
    assert no.effects == (
        control.Reply("a3", False, "policy en-2020-01-19 discloses no audio collection"),
    )


def test_a_grant_without_an_app_key_or_a_valid_receipt_changes_nothing() -> None:
    device = _device("en-2023-01-10")
    outcome = control.decide(device, GrantConsent("g1", {"purpose": "diagnostics"}), NOW, RULES)
    assert outcome.state is device
    assert outcome.effects == (
        control.Reply("g1", False, "no app key was provisioned at enrolment"),
    )


def test_an_unloadable_version_and_a_refused_command_change_nothing() -> None:
    device = _device("en-2023-01-10")
    why = "unknown policy version 'xx-1999-01-01'"
    outcome = control.decide(device, AcceptPolicy("p1", "xx-1999-01-01"), NOW, RULES, why)
    assert outcome == control.Outcome(device, (control.Reply("p1", False, why),))
    refused = control.decide(device, Refused("r1", "malformed JSON"), NOW, RULES)
    assert refused == control.Outcome(device, (control.Reply("r1", False, "malformed JSON"),))
    status = control.decide(device, RequestStatus("s1"), NOW, RULES)
    assert status.effects == (control.Reply("s1", True, "status", status=True),)
