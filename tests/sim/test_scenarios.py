"""The simulator is deterministic, its scenarios contain what their names promise, and
its frames carry true ground truth."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.inputs import MotionAlarm
from firmware_sim import scenarios as sc
from firmware_sim.device import FromApp, SimDevice, ToAgent, mic_samples
from firmware_sim.errors import SimError
from firmware_sim.scene import PlateStyle, render_street

START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
REQUIRED = (
    "normal_day",
    "street_parked_cars",
    "night",
    "offline_hour",
    "consent_withdrawn_mid_queue",
    "audio_off",
    "policy_switch",
    "reboot_during_upload",
)


def _frames(name: str, seed: int) -> list[np.ndarray]:
    outputs = SimDevice("SN0001", seed=seed).play(sc.get_scenario(name), START)
    return [
        o.value.frame
        for o in outputs
        if isinstance(o, ToAgent) and isinstance(o.value, MotionAlarm)
    ]


def test_scenarios_include_every_required_one() -> None:
    assert set(REQUIRED) <= set(sc.SCENARIOS)


@pytest.mark.parametrize("name", sorted(sc.SCENARIOS))
def test_scenario_is_deterministic_for_a_seed(name: str) -> None:
    a, b = _frames(name, 1), _frames(name, 1)
    assert len(a) == len(b)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_different_seeds_give_different_frames() -> None:
    a, b = _frames("street_parked_cars", 1), _frames("street_parked_cars", 2)
    assert not np.array_equal(a[0], b[0])


def test_unknown_scenario_lists_the_known_ones() -> None:
    with pytest.raises(SimError, match="known: normal_day"):
        sc.get_scenario("tuesday")


def test_offline_hour_is_an_hour_offline() -> None:
    downs = [
        s.event
        for s in sc.get_scenario("offline_hour").steps
        if isinstance(s.event, sc.NetworkDown)
    ]
    assert [d.seconds for d in downs] == [3600]


def test_consent_withdrawn_mid_queue_orders_grant_down_withdraw_up() -> None:
    steps = sc.get_scenario("consent_withdrawn_mid_queue").steps
    grant = min(s.at_s for s in steps if isinstance(s.event, sc.ConsentGranted))
    down = next(s for s in steps if isinstance(s.event, sc.NetworkDown))
    withdraw = next(s.at_s for s in steps if isinstance(s.event, sc.ButtonPressed))
    assert isinstance(down.event, sc.NetworkDown)
    assert grant < down.at_s < withdraw < down.at_s + down.event.seconds


def test_policy_switch_goes_2020_2023_2020() -> None:
    versions = [
        s.event.version
        for s in sc.get_scenario("policy_switch").steps
        if isinstance(s.event, sc.PolicySwitched)
    ]
    assert versions == ["en-2020-01-19", "en-2023-01-10", "en-2020-01-19"]


def test_audio_off_turns_audio_off_then_on() -> None:
    toggles = [
        s.event.on
        for s in sc.get_scenario("audio_off").steps
        if isinstance(s.event, sc.AudioToggled)
    ]
    assert toggles == [False, True]


def test_reboot_during_upload_cuts_power_after_clips() -> None:
    steps = sc.get_scenario("reboot_during_upload").steps
    cut = next(s.at_s for s in steps if isinstance(s.event, sc.PowerCut))
    assert any(
        isinstance(s.event, sc.MotionDetected) and s.event.clip and s.at_s < cut for s in steps
    )


def test_device_sends_app_commands_for_consent_and_policy() -> None:
    outputs = list(SimDevice("SN0001").play(sc.get_scenario("policy_switch"), START))
    commands = [(o.command, o.argument) for o in outputs if isinstance(o, FromApp)]
    assert ("policy.accept", "en-2023-01-10") in commands
    assert ("consent.grant", "device_ai") in commands


@pytest.mark.parametrize("night", [False, True])
def test_plate_ground_truth_boxes_hold_drawn_detail(night: bool) -> None:
    rendered = render_street(np.random.default_rng(5), 1280, 720, list(PlateStyle), night=night)
    gray = cv2.cvtColor(rendered.frame, cv2.COLOR_BGR2GRAY)
    background = float(cv2.Laplacian(gray[:100, :100], cv2.CV_64F).var())
    assert len(rendered.plate_boxes) == 5
    for box in rendered.plate_boxes:
        assert box.clip(1280, 720) == box
        inside = float(
            cv2.Laplacian(gray[box.y : box.y + box.h, box.x : box.x + box.w], cv2.CV_64F).var()
        )
        assert inside > 3 * background


def test_microphone_samples_are_int16_mono_and_seeded() -> None:
    a = mic_samples(np.random.default_rng(1), 0.5)
    b = mic_samples(np.random.default_rng(1), 0.5)
    assert a.dtype == np.int16
    assert a.shape == (8000,)
    assert np.array_equal(a, b)


def test_the_leak_audit_fails_a_run_that_never_drained(tmp_path: Path) -> None:
    """A run whose messages never reached the broker has nothing to audit: 0 findings
    there would be a pass for nothing (the audit command exited 0 on such runs)."""
    from firmware_sim.in_memory import run_in_memory
    from firmware_sim.leak_audit import audit_run
    from firmware_sim.scenarios import get_scenario

    record, _ = run_in_memory(get_scenario("normal_day"), "en-2020-01-19", tmp_path)
    assert audit_run(record).findings == []
    record.drained = False
    assert [f.problem for f in audit_run(record).findings] == [
        "the run did not drain: its messages were not all delivered"
    ]


def test_the_audit_matrix_asks_each_version_for_its_consent_purposes() -> None:
    from firmware_sim.__main__ import consent_states

    assert consent_states("en-2020-01-19") == [("none", ())]
    assert consent_states("en-2023-01-10") == [
        ("none", ()),
        ("all", ("ai_detection", "device_ai", "diagnostics", "device_log")),
    ]
