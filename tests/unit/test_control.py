"""Which purposes stop on a consent or policy change: one answer for every path (pure)."""

from __future__ import annotations

from edge import control
from edge.model import Purpose
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
