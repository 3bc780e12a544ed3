"""Every scenario through the real agent on the in-memory link, with simulated time:
deterministic, milliseconds, no sockets. The independent leak audit checks each run."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from firmware_sim.in_memory import run_in_memory
from firmware_sim.leak_audit import audit_run
from firmware_sim.scenarios import SCENARIOS, get_scenario

CASES: list[tuple[str, str, tuple[str, ...]]] = [
    (name, "en-2023-01-10", ("device_ai", "diagnostics", "device_log")) for name in SCENARIOS
]
CASES += [
    (name, version, ())
    for name in ("normal_day", "street_parked_cars", "audio_off")
    for version in ("en-2020-01-19", "fr-2020-02-13", "pl-2021-09-13", "th-2020-01-19")
]


@pytest.fixture(autouse=True)
def _quiet_agent(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)


@pytest.mark.parametrize(
    ("name", "version", "consents"), CASES, ids=[f"{n}-{v}-{len(c)}" for n, v, c in CASES]
)
def test_scenario_in_process_passes_the_leak_audit(
    name: str, version: str, consents: tuple[str, ...], tmp_path: Path
) -> None:
    record, _ = run_in_memory(get_scenario(name), version, tmp_path, consents)
    assert record.drained
    assert [f.problem for f in audit_run(record).findings] == []


def _shape(tmp_path: Path, sub: str) -> list[tuple[str, tuple[str, ...]]]:
    record, _ = run_in_memory(
        get_scenario("street_parked_cars"), "en-2023-01-10", tmp_path / sub, ("device_ai",)
    )
    shape = []
    for message in record.messages:
        body = json.loads(message.payload) if message.payload else {}
        shape.append((message.topic, tuple(sorted(body.get("data", body)))))
    return shape


def test_in_process_runs_are_deterministic(tmp_path: Path) -> None:
    assert _shape(tmp_path, "a") == _shape(tmp_path, "b")


def test_fr_2020_sends_no_alarm_at_all(tmp_path: Path) -> None:
    record, _ = run_in_memory(get_scenario("street_parked_cars"), "fr-2020-02-13", tmp_path)
    topics = {m.topic.split("/", 2)[2] for m in record.messages}
    assert not topics & {"alarm/event", "alarm/snapshot", "clip"}
    assert "telemetry" in topics


def test_offline_hour_delivers_every_alarm_after_the_link_is_back(tmp_path: Path) -> None:
    record, _ = run_in_memory(get_scenario("offline_hour"), "en-2020-01-19", tmp_path)
    events = [m for m in record.messages if m.topic.endswith("alarm/event")]
    assert len(events) == 3
    assert all(m.received_monotonic >= 3601 for m in events)
    created = [json.loads(m.payload)["created_at"] for m in events]
    assert created == sorted(created)


def test_button_withdrawal_stops_diagnostics_at_once(tmp_path: Path) -> None:
    record, _ = run_in_memory(
        get_scenario("consent_withdrawn_mid_queue"), "en-2023-01-10", tmp_path
    )
    pressed = next(m.real_s for m in record.timeline if m.kind == "input.ButtonPressed")
    late = [
        m
        for m in record.messages
        if m.topic.endswith(("diagnostics", "log"))
        and m.payload
        and m.received_monotonic >= pressed
    ]
    assert late == []
    assert record.counters["purged"] >= 3


def test_rtc_skew_expires_queued_alarms(tmp_path: Path) -> None:
    record, _ = run_in_memory(get_scenario("rtc_skew"), "en-2023-01-10", tmp_path)
    assert not [m for m in record.messages if "alarm" in m.topic]
    assert record.counters["expired"] >= 2


def test_plate_numbers_leave_only_under_2023_with_consent(tmp_path: Path) -> None:
    record, _ = run_in_memory(get_scenario("policy_switch"), "en-2023-01-10", tmp_path)
    plates = [json.loads(m.payload) for m in record.messages if m.topic.endswith("ai/plate")]
    assert len(plates) == 1  # the middle one: 2023 and consent; not before, not after
    assert plates[0]["policy_version"] == "en-2023-01-10"


def test_audio_off_refuses_the_microphone_and_strips_queued_audio(tmp_path: Path) -> None:
    record, _ = run_in_memory(get_scenario("audio_off"), "en-2023-01-10", tmp_path)
    assert record.mic_refused == 1
    with_audio = [
        json.loads(m.payload)
        for m in record.messages
        if m.topic.endswith("clip") and "audio_track" in json.loads(m.payload)["data"]
    ]
    assert len(with_audio) == 2  # before the toggle went off, and after it came back on


def test_clock_jumping_back_loses_nothing_and_expires_nothing(tmp_path: Path) -> None:
    from firmware_sim import scenarios as sc

    scenario = sc.Scenario(
        "clock_back",
        "the RTC jumps back a day while alarms are queued offline",
        11,
        (
            sc.Step(0, sc.NetworkDown(30)),
            sc.Step(1, sc.MotionDetected("doorway", (), clip=False)),
            sc.Step(2, sc.ClockSkewed(-86400)),
            sc.Step(3, sc.MotionDetected("doorway", (), clip=False)),
            sc.Step(40, sc.StatusReported()),
        ),
    )
    record, _ = run_in_memory(scenario, "en-2023-01-10", tmp_path)
    assert len([m for m in record.messages if m.topic.endswith("alarm/event")]) == 2
    assert record.counters.get("expired", 0) == 0
    assert [f.problem for f in audit_run(record).findings] == []
