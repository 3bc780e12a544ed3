"""Live traffic against docs/asyncapi.yaml: a real agent on a real Mosquitto, seen by the
observer that validates every message against the schema of its channel."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from certs.pki import Pki
from firmware_sim.broker import MosquittoBroker
from firmware_sim.contract import ContractError
from firmware_sim.observer import Observer, client_context
from tests.integration.conftest import observer_for

ROOT = Path(__file__).resolve().parents[2]


def test_a_scenario_s_live_traffic_matches_the_contract(
    shared_broker: MosquittoBroker, pki: Pki
) -> None:
    # SN0003: on the shared broker only real agents publish for it (SN0002 carries a
    # transport test's hand-made retained availability).
    ident = pki.devices["SN0003"]
    with observer_for(shared_broker, pki, "devices/SN0003/#") as observer:
        result = subprocess.run(
            [sys.executable, "-m", "firmware_sim", "run", "--scenario", "normal_day",
             "--policy", "en-2023-01-10", "--serial", "SN0003",
             "--broker", f"{shared_broker.host}:{shared_broker.port}",
             "--ca", str(pki.ca_cert), "--cert", str(ident.cert), "--key", str(ident.key),
             "--speed", "60"],
            capture_output=True, text=True, cwd=ROOT, timeout=110, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        observer.wait_for(lambda ms: any(m.topic.endswith("/birth") for m in ms), 5)
    # stop() raised nothing: every message validated; these channels were really seen.
    assert observer.violations == []
    assert {"availability", "birth", "telemetry", "alarm/event"} <= set(observer.checked)
    assert sum(observer.checked.values()) == len(observer.messages)


def test_a_wrong_payload_on_the_broker_fails_the_observer(
    shared_broker: MosquittoBroker, pki: Pki
) -> None:
    device = pki.devices["SN0001"]
    context = client_context(pki.ca_cert, device.cert, device.key)
    impostor = Observer(
        shared_broker.host, shared_broker.port, context, "SN0001", "devices/SN0001/cmd"
    )
    observer = observer_for(shared_broker, pki, "devices/SN0001/alarm/#").start()
    with impostor:
        # The envelope without record_id, and a snapshot without its media type.
        impostor.publish("devices/SN0001/alarm/event", b'{"v":1,"data":{}}')
        impostor.publish(
            "devices/SN0001/alarm/snapshot",
            b'{"v":1,"record_id":"r1","created_at":"2026-11-23T12:00:00+00:00",'
            b'"policy_version":"en-2023-01-10","purpose":"notification",'
            b'"data":{"alarm_snapshot":{"b64":"/9j/"}}}',
        )
        observer.wait_for(lambda ms: len(ms) >= 2, 5)
    with pytest.raises(ContractError, match="2 message"):
        observer.stop()
    assert "record_id" in observer.violations[0]
