"""The pytest plugin used the way a backend team would: only its fixtures (``sim_fleet``,
``sim_device``), its public API (``firmware_sim.testing``) and the reference consumer.

No ``--sim-broker`` is given here, so the plugin starts its own mutual-TLS Mosquitto; the
same tests run against any broker with ``--sim-broker HOST:PORT --sim-ca ...``. Every
message the backend receives is checked against docs/asyncapi.yaml by the plugin.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from edge.consumer import Consumer, Delivery
from firmware_sim.testing import CommandRefusedError, SimFleet, SimulatedDevice

ROOT = Path(__file__).resolve().parents[2]


def _data(payload: bytes) -> dict[str, object]:
    body = json.loads(payload)
    assert isinstance(body, dict)
    data = body["data"]
    assert isinstance(data, dict)
    return data


def test_a_doorbell_reports_its_status_and_an_alarm(sim_device: SimulatedDevice) -> None:
    sim_device.status_report()
    sim_device.alarm(plates=2)
    status = _data(sim_device.wait_for("telemetry")[0].payload)
    assert status["serial_number"] == sim_device.serial
    assert sim_device.wait_for("alarm/event")
    assert sim_device.wait_for("alarm/snapshot")
    birth = _data(sim_device.wait_for("birth")[-1].payload)
    assert birth["policy_version"] == "en-2023-01-10"


def test_consent_turns_diagnostics_on_and_a_withdrawal_clears_them(sim_fleet: SimFleet) -> None:
    (device,) = sim_fleet.start(1, consents=["diagnostics"])
    device.diagnostics()
    assert device.wait_for("diagnostics")[0].payload  # granted: sent (and retained)
    result = device.withdraw("diagnostics")
    assert result["reason"] == "withdrawn: diagnostics"
    cleared = device.wait_for("diagnostics", count=2)[-1]
    assert cleared.payload == b""  # the retained copy is gone from the broker
    device.diagnostics()
    device.status_report()
    device.wait_for("telemetry")
    assert device.wait_drained(10)
    assert len(device.messages("diagnostics")) == 2  # nothing after the withdrawal


def test_a_command_the_device_refuses_raises_with_its_reason(sim_device: SimulatedDevice) -> None:
    with pytest.raises(CommandRefusedError, match="unknown policy version 'xx-1999-01-01'"):
        sim_device.accept_policy("xx-1999-01-01")
    sim_device.accept_policy("en-2020-01-19")
    with pytest.raises(CommandRefusedError, match="discloses no audio"):
        sim_device.set_audio(True)


def test_a_scenario_plays_with_the_app_steps_sent_by_the_backend(
    sim_device: SimulatedDevice,
) -> None:
    record = sim_device.play("policy_switch", speed=20)
    assert record.drained
    assert record.unanswered == []
    answered = [m for m in record.timeline if m.kind == "policy.accept.answered"]
    assert len(answered) == 3


def test_fifty_devices_with_link_faults_each_delivered_once(sim_fleet: SimFleet) -> None:
    """A fleet as a backend sees it: the reference consumer, fed everything received,
    delivers each record once, and after a power cut knows every device is online."""
    devices = sim_fleet.start(50, policy="en-2020-01-19")
    for device in devices:
        device.status_report()
    for device in devices[:10]:
        device.drop_connection()  # each reconnects and re-sends what was not acknowledged
        device.status_report()
    devices[10].power_cut()
    devices[10].status_report()
    for device in devices:
        assert device.wait_drained(60), device.serial
    consumer = Consumer()
    received = sim_fleet.backend.snapshot()
    delivered = [
        outcome
        for message in received
        if isinstance(outcome := consumer.receive(message.topic, message.payload), Delivery)
    ]
    telemetry = Counter(d.serial for d in delivered if d.channel == "telemetry")
    assert len(telemetry) == 50
    for device in devices:
        assert telemetry[device.serial] == (2 if device in devices[:11] else 1), device.serial
    assert all(consumer.online.get(d.serial) == "online" for d in devices)
    # The broker delivers it all again (a consumer that reconnects without a persistent
    # session gets the retained births again; QoS 1 re-sends): nothing is acted on twice.
    again = [consumer.receive(m.topic, m.payload) for m in received if m.payload]
    assert not [outcome for outcome in again if isinstance(outcome, Delivery)]


def test_the_example_consumer_prints_each_record_once(sim_fleet: SimFleet) -> None:
    """examples/consumer.py against the same broker, with the backend's identity."""
    target = sim_fleet.target
    command = [
        sys.executable,
        str(ROOT / "examples" / "consumer.py"),
        f"{target.host}:{target.port}",
        str(target.ca),
        str(target.backend.cert),
        str(target.backend.key),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    consumer = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        time.sleep(1.5)  # subscribed
        devices = sim_fleet.start(3, policy="en-2020-01-19")
        for device in devices:
            device.status_report()
            device.alarm()
        for device in devices:
            assert device.wait_drained(30)
        time.sleep(1.0)
    finally:
        consumer.send_signal(signal.SIGINT)
        out, err = consumer.communicate(timeout=10)
    lines = [json.loads(line) for line in out.splitlines()]
    ids = [line["record_id"] for line in lines if line["record_id"] is not None]
    assert len(ids) == len(set(ids)), out
    channels = Counter(line["channel"] for line in lines)
    assert channels["telemetry"] == 3, out
    assert channels["alarm/event"] == 3, out
    assert channels["birth"] >= 3, out
    assert '"delivered"' in err
