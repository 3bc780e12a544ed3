"""The agent keeps running and keeps its promises when inputs, commands or its own state go
wrong: each case here stopped the device or broke a rule on commit 398a35f (issue 16)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from edge.errors import StoreKeyError
from edge.inputs import AudioCaptured, DiagnosticsSampled, MotionAlarm, StatusDue
from edge.model import Priority, Purpose
from edge.outbox import OutboxItem
from edge.policy.catalogue import FieldName
from edge.shell.agent import Stop
from edge.shell.shipped import load_manifest
from firmware_sim.in_memory import MemoryDevice
from firmware_sim.scene import PlateStyle, render_street


@pytest.fixture(autouse=True)
def _quiet_agent(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL)


def _frame(width: int = 320, height: int = 180) -> np.ndarray:
    return np.full((height, width, 3), 90, dtype=np.uint8)


def _topics(device: MemoryDevice) -> list[str]:
    return [m.topic.split("/", 2)[2] for m in device.broker.messages]


def test_a_clip_with_frames_of_two_sizes_refuses_the_clip_not_the_device(tmp_path: Path) -> None:
    device = MemoryDevice(tmp_path, "en-2020-01-19")
    device.drain()
    at = device.clock.now()
    frames = (_frame(), _frame(), _frame(640, 360))  # photos of different sizes
    device.agent.events.put(MotionAlarm(at, _frame(), clip_frames=frames))
    device.agent.events.put(StatusDue(at))  # in the same batch: must still leave
    device.drain()
    topics = _topics(device)
    assert "alarm/event" in topics
    assert "alarm/snapshot" in topics
    assert "clip" not in topics
    assert topics.count("telemetry") == 1
    assert device.agent.counters["inputs_refused"] == 1
    assert not device.agent.stopped
    device.clock.at_s += 60
    device.agent.events.put(MotionAlarm(device.clock.now(), _frame(), clip_frames=(_frame(),) * 3))
    device.drain()
    assert _topics(device).count("clip") == 1  # the device goes on working


def test_bad_frame_bad_audio_and_malformed_command_in_one_batch_with_an_alarm(
    tmp_path: Path,
) -> None:
    device = MemoryDevice(tmp_path, "en-2023-01-10", audio=True)
    device.drain()
    agent = device.agent
    at = device.clock.now()
    agent.events.put(MotionAlarm(at, np.zeros((10, 10), dtype=np.float32)))  # not a BGR frame
    agent.events.put(AudioCaptured(at, np.zeros(1600, dtype=np.float64)))  # not int16
    device.broker.send_command(device.serial, b"{not json")
    street = render_street(np.random.default_rng(3), 640, 360, (PlateStyle.EU,)).frame
    agent.events.put(MotionAlarm(at + timedelta(seconds=1), street, clip_frames=(street,) * 3))
    device.drain()
    topics = _topics(device)
    assert topics.count("alarm/snapshot") == 1
    assert topics.count("clip") == 1
    refused = agent.counters["inputs_refused"] + agent.counters["commands_refused"]
    assert refused == 3
    results = device.results()
    assert [r["ok"] for r in results.values()] == [False]
    trail = (tmp_path / "state" / "audit.jsonl").read_text().splitlines()
    events = [json.loads(line)["event"] for line in trail]
    assert events.count("input_refused") == 2


def _granted_diagnostics(tmp_path: Path) -> MemoryDevice:
    device = MemoryDevice(tmp_path, "en-2023-01-10")
    device.drain()
    device.command("consent.grant", "diagnostics")
    device.drain()
    device.agent.events.put(DiagnosticsSampled(device.clock.now(), {"network_type": "wifi"}))
    device.drain()
    assert "devices/SN0001/diagnostics" in device.broker.retained
    return device


def test_a_policy_switch_that_ends_diagnostics_clears_its_retained_topic(tmp_path: Path) -> None:
    device = _granted_diagnostics(tmp_path)
    device.command("policy.accept", "en-2020-01-19")
    device.drain()
    assert "devices/SN0001/diagnostics" not in device.broker.retained


def test_a_withdrawal_clears_the_retained_topic_too(tmp_path: Path) -> None:
    device = _granted_diagnostics(tmp_path)
    device.command("consent.withdraw", "diagnostics")
    device.drain()
    assert "devices/SN0001/diagnostics" not in device.broker.retained


def _queue_directly(device: MemoryDevice, topic: str, payload: bytes) -> None:
    """An item as a queue restored from disk may hold it (not made by this agent run)."""
    now = device.clock.now()
    device.agent.outbox.enqueue(
        OutboxItem(
            "restored-clip",
            topic,
            payload,
            1,
            False,
            Purpose.CLOUD_STORAGE,
            Priority.CLIP,
            now,
            None,
            "en-2023-01-10",
            "en-2023-01-10#row12",
        )
    )


def test_send_time_audio_check_fails_closed_on_a_clip_it_cannot_parse(tmp_path: Path) -> None:
    device = MemoryDevice(tmp_path, "en-2023-01-10", audio=True)
    device.drain()
    device.command("audio.set", False)
    device.drain()
    assert not device.agent.audio_on
    device.broker.go_down()
    device.drain()
    _queue_directly(device, "devices/SN0001/clip", b'{"v":1,"data":{"event_clip":"???"}}')
    device.broker.come_up()
    device.drain()
    assert "clip" not in _topics(device)
    assert device.agent.counters["clips_refused"] == 1
    assert device.agent.outbox.pending_count() == 0
    assert device.agent.outbox.counters().get("denied_at_send") == 1


def test_no_availability_leaves_where_the_gate_removes_online_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version that does not disclose online status: no Will, no online, no stopped."""
    manifest = load_manifest("en-2020-01-19")
    kept = tuple(c for c in manifest.clauses if c.field is not FieldName.ONLINE_STATUS)
    index = {k: v for k, v in manifest._index.items() if v.field is not FieldName.ONLINE_STATUS}
    stripped = replace(manifest, clauses=kept, _index=index)
    monkeypatch.setattr("edge.shell.agent.load_manifest", lambda version: stripped)
    device = MemoryDevice(tmp_path, "en-2020-01-19")
    device.drain()
    device.broker.go_down()  # a lost link: the broker would send the Will now
    device.broker.come_up()
    device.drain()
    device.agent.handle(Stop())
    assert [m.topic for m in device.broker.messages if m.topic.endswith("availability")] == []
    assert "devices/SN0001/birth" in device.broker.retained  # the device still works
    assert device.agent.counters["availability_denied"] >= 3


def _queued_alarm_then_stopped(tmp_path: Path) -> tuple[MemoryDevice, Path, bytes]:
    device = MemoryDevice(tmp_path, "en-2020-01-19")
    device.drain()
    device.broker.go_down()
    device.agent.events.put(MotionAlarm(device.clock.now(), _frame()))
    device.drain()
    assert device.agent.outbox.pending_count() >= 2  # the alarm and its snapshot wait
    device.agent.handle(Stop())
    outbox = tmp_path / "state" / "outbox.sqlite3"
    return device, outbox, outbox.read_bytes()


@pytest.mark.parametrize("key_fault", ["wrong", "missing"])
def test_a_wrong_or_missing_key_stops_the_agent_and_keeps_the_queue(
    tmp_path: Path, key_fault: str
) -> None:
    device, outbox, before = _queued_alarm_then_stopped(tmp_path)
    key = device.config.outbox_key_file
    if key_fault == "wrong":
        key.write_bytes(os.urandom(32))
    else:
        key.unlink()  # e.g. its volume is not mounted at boot
    with pytest.raises(StoreKeyError, match="key"):
        device.new_agent()
    assert outbox.read_bytes() == before
    assert not list(outbox.parent.glob("*.corrupt-*"))  # nothing moved aside
    assert key.exists() == (key_fault == "wrong")  # a missing key is not recreated


def _block_consent_file(tmp_path: Path) -> Path:
    """A directory where the consent file goes: every save fails with an OSError."""
    path = tmp_path / "state" / "consent.json"
    path.unlink(missing_ok=True)
    path.mkdir()
    return path


def test_a_grant_that_cannot_be_saved_does_not_take_effect(tmp_path: Path) -> None:
    device = MemoryDevice(tmp_path, "en-2023-01-10")
    device.drain()
    blocked = _block_consent_file(tmp_path)
    first = device.command("consent.grant", "diagnostics")
    device.drain()
    assert device.results()[first]["ok"] is False
    assert device.agent.consent_snapshot().get("diagnostics") != "granted"
    assert device.agent.counters["consent_write_failed"] == 1
    blocked.rmdir()
    second = device.command("consent.grant", "diagnostics")
    device.drain()
    assert device.results()[second]["ok"] is True
    assert device.agent.consent_snapshot()["diagnostics"] == "granted"


def test_a_withdrawal_holds_at_once_and_is_saved_when_the_disk_allows(tmp_path: Path) -> None:
    device = MemoryDevice(tmp_path, "en-2023-01-10")
    device.drain()
    device.command("consent.grant", "diagnostics")
    device.drain()
    blocked = _block_consent_file(tmp_path)
    device.command("consent.withdraw", "diagnostics")
    device.drain()
    assert device.agent.consent_snapshot()["diagnostics"] != "granted"
    assert device.agent.counters["consent_write_failed"] >= 1
    blocked.rmdir()
    device.agent.events.put(StatusDue(device.clock.now()))  # any batch retries the save
    device.drain()
    saved = json.loads(blocked.read_text())
    assert saved["entries"]["diagnostics"]["status"] == "withdrawn"
    restarted = device.restart()
    assert restarted.consent_snapshot()["diagnostics"] != "granted"
