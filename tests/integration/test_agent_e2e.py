"""The whole path against a real Mosquitto over mutual TLS: sensor -> gate -> outbox ->
transport -> broker -> an independent observer. Nothing mocked."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from certs.pki import Pki
from edge.inputs import StatusDue
from edge.shell.audit_log import read_records, verify_file
from firmware_sim.broker import MosquittoBroker
from firmware_sim.device import SimDevice
from firmware_sim.harness import (
    AgentHarness,
    SimClock,
    agent_config,
    backend_observer,
    prepare_device,
)
from firmware_sim.leak_audit import audit_run
from firmware_sim.link import LinkRelay
from firmware_sim.observer import Observer
from firmware_sim.runner import run_scenario
from firmware_sim.scenarios import get_scenario

pytestmark = [pytest.mark.broker, pytest.mark.timeout(90)]


@dataclass
class World:
    pki: Pki
    broker: MosquittoBroker
    relay: LinkRelay
    backend: Observer
    harness: AgentHarness


def _world(
    pki: Pki,
    broker: MosquittoBroker,
    workdir: Path,
    policy: str,
    serial: str = "SN0001",
    audio: bool | None = None,
    keepalive_s: int = 5,
) -> World:
    relay = LinkRelay(broker.host, broker.port)
    backend = backend_observer(pki, broker.host, broker.port, f"devices/{serial}/#").start()
    setup = prepare_device(pki, serial, workdir / serial)
    config = agent_config(setup, [(relay.host, relay.port)], policy, audio, keepalive_s=keepalive_s)
    harness = AgentHarness(setup, config, SimClock())
    harness.start()
    assert harness.wait_connected(15), "the agent did not connect"
    return World(pki, broker, relay, backend, harness)


@pytest.fixture
def world(pki: Pki, broker: MosquittoBroker, tmp_path: Path) -> Iterator[World]:
    w = _world(pki, broker, tmp_path, "en-2023-01-10")
    try:
        yield w
    finally:
        w.harness.stop()
        w.backend.stop()
        w.relay.close()


def _telemetry_ids(backend: Observer) -> list[str]:
    return [
        json.loads(m.payload)["record_id"] for m in backend.on_topic("devices/SN0001/telemetry")
    ]


def test_offline_queue_delivers_everything_in_order(world: World) -> None:
    world.relay.down()
    for _ in range(50):
        world.harness.put(StatusDue(world.harness.clock.now()))
    time.sleep(0.5)
    agent = world.harness.agent
    assert agent is not None
    assert agent.outbox.pending_count() == 50
    queued = [
        r.record_id for r in read_records(agent.audit.path).records if r.event.value == "queued"
    ]
    world.relay.up()
    assert world.harness.wait_drained(30)
    got = world.backend.wait_for(
        lambda ms: len([m for m in ms if m.topic.endswith("telemetry")]) >= 50
    )
    ids = [json.loads(m.payload)["record_id"] for m in got if m.topic.endswith("telemetry")]
    assert ids == queued[-50:]


def test_power_cut_mid_queue_loses_nothing(world: World) -> None:
    world.relay.down()
    for _ in range(30):
        world.harness.put(StatusDue(world.harness.clock.now()))
    time.sleep(0.5)
    world.harness.kill()  # power lost: only what was committed survives
    world.relay.up()
    world.harness.start()
    assert world.harness.wait_drained(30)
    got = world.backend.wait_for(
        lambda ms: (
            len({json.loads(m.payload)["record_id"] for m in ms if m.topic.endswith("telemetry")})
            >= 30
        )
    )
    ids = {json.loads(m.payload)["record_id"] for m in got if m.topic.endswith("telemetry")}
    assert len(ids) == 30  # at least once, de-duplicated by record_id


def test_broker_restart_mid_burst_loses_nothing(world: World) -> None:
    for i in range(40):
        world.harness.put(StatusDue(world.harness.clock.now()))
        if i == 20:
            world.broker.restart()
    assert world.harness.wait_drained(40)
    # The observer lost its session with the restart: count on the device side instead.
    agent = world.harness.agent
    assert agent is not None
    acked = [
        r
        for r in read_records(agent.audit.path).records
        if r.event.value == "acked" and r.topic.endswith("telemetry")
    ]
    assert len({r.record_id for r in acked}) == 40
    assert agent.outbox.pending_count() == 0


def test_hung_link_is_detected_by_keepalive_and_recovered(
    pki: Pki, broker: MosquittoBroker, tmp_path: Path
) -> None:
    world = _world(pki, broker, tmp_path, "en-2023-01-10", keepalive_s=2)
    try:
        world.relay.hang()  # no FIN, no RST: bytes just stop
        world.harness.put(StatusDue(world.harness.clock.now()))
        agent = world.harness.agent
        assert agent is not None
        deadline = time.monotonic() + 15
        while agent.counters["connection_lost"] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert agent.counters["connection_lost"] >= 1, "keepalive did not notice the hung link"
        world.relay.resume()
        assert world.harness.wait_drained(30)
        assert world.backend.wait_for(lambda ms: any(m.topic.endswith("telemetry") for m in ms), 10)
    finally:
        world.harness.stop()
        world.backend.stop()
        world.relay.close()


def test_acl_refusal_is_recorded_in_the_audit_trail(
    pki: Pki, broker: MosquittoBroker, tmp_path: Path
) -> None:
    # Serial SN0002 with SN0001's certificate: the broker's user is the CN, so every
    # publish under devices/SN0002/ is refused (MQTT 5 PUBACK 0x87).
    relay = LinkRelay(broker.host, broker.port)
    setup = prepare_device(pki, "SN0001", tmp_path / "dev")
    setup.serial = "SN0002"
    config = agent_config(setup, [(relay.host, relay.port)], "en-2020-01-19")
    harness = AgentHarness(setup, config, SimClock())
    try:
        harness.start()
        assert harness.wait_connected(15)
        harness.put(StatusDue(harness.clock.now()))
        assert harness.wait_drained(15)
        agent = harness.agent
        assert agent is not None
        refused = [
            r
            for r in read_records(agent.audit.path).records
            if r.event.value == "refused_by_broker"
        ]
        assert refused
        assert refused[0].reason_code == 0x87
        assert agent.outbox.counters().get("refused_by_broker", 0) >= 1
    finally:
        harness.stop()
        relay.close()


@pytest.mark.parametrize(
    ("scenario", "policy", "consents"),
    [
        ("street_parked_cars", "en-2020-01-19", ()),
        ("consent_withdrawn_mid_queue", "en-2023-01-10", ()),
        ("audio_off", "en-2023-01-10", ()),
        ("policy_switch", "en-2023-01-10", ()),
        ("rtc_skew", "en-2023-01-10", ()),
        ("reboot_during_upload", "th-2020-01-19", ()),
        ("normal_day", "fr-2020-02-13", ()),
    ],
)
def test_scenario_end_to_end_passes_the_leak_audit(
    pki: Pki,
    broker: MosquittoBroker,
    tmp_path: Path,
    scenario: str,
    policy: str,
    consents: tuple[str, ...],
) -> None:
    w = _world(pki, broker, tmp_path, policy)
    try:
        speed = max(1.0, get_scenario(scenario).duration_s / 2.0)
        record = run_scenario(
            w.harness,
            w.relay,
            w.backend,
            SimDevice("SN0001"),
            get_scenario(scenario),
            speed,
            consents,
        )
        audit = audit_run(record)
        assert record.drained
        assert [f.problem for f in audit.findings] == []
        assert audit.checked > 0
    finally:
        w.harness.stop()
        w.backend.stop()
        w.relay.close()
    state = tmp_path / "SN0001" / "state"
    assert verify_file(state / "audit.jsonl").ok


def test_consent_withdrawn_offline_purges_that_purpose(
    pki: Pki, broker: MosquittoBroker, tmp_path: Path
) -> None:
    w = _world(pki, broker, tmp_path, "en-2023-01-10")
    try:
        scenario = get_scenario("consent_withdrawn_mid_queue")
        record = run_scenario(w.harness, w.relay, w.backend, SimDevice("SN0001"), scenario, 60.0)
        topics = [m.topic for m in record.messages]
        button_at = next(m.real_s for m in record.timeline if m.kind == "input.ButtonPressed")
        late = [
            m.topic
            for m in record.messages
            if m.topic.endswith(("diagnostics", "log"))
            and m.payload
            and m.received_monotonic - record.mono0 > button_at
        ]
        assert late == []
        assert record.counters.get("purged", 0) >= 3
        assert "devices/SN0001/diagnostics" in topics  # the one sent before the link went down
    finally:
        w.harness.stop()
        w.backend.stop()
        w.relay.close()


def test_expired_alarms_are_never_delivered(
    pki: Pki, broker: MosquittoBroker, tmp_path: Path
) -> None:
    w = _world(pki, broker, tmp_path, "en-2023-01-10")
    try:
        record = run_scenario(
            w.harness, w.relay, w.backend, SimDevice("SN0001"), get_scenario("rtc_skew"), 20.0
        )
        alarms = [m for m in record.messages if "alarm" in m.topic]
        assert alarms == []
        assert record.counters.get("expired", 0) >= 2
        # data made after the jump carries the jumped time, so it is fresh and leaves
        assert any(m.topic.endswith("/telemetry") for m in record.messages)
    finally:
        w.harness.stop()
        w.backend.stop()
        w.relay.close()


def test_leak_audit_catches_a_deliberately_leaky_gate(
    pki: Pki, broker: MosquittoBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edge.policy.gate
    import edge.shell.gatekeeper
    from edge.policy.catalogue import FieldName
    from edge.policy.gate import Decision

    real = edge.policy.gate.decide

    def leaky(*args: object, **kwargs: object) -> Decision:
        decision = real(*args, **kwargs)  # type: ignore[arg-type]
        if decision.kept and FieldName.ALARM_EVENT in decision.kept:
            kept = {**decision.kept, FieldName.IP_ADDRESS: "192.0.2.7"}  # one extra field
            return Decision(
                decision.purpose,
                kept,
                decision.clauses,
                decision.removed,
                decision.policy_version,
                decision.manifest_digest,
                decision.retention,
            )
        return decision

    monkeypatch.setattr(edge.shell.gatekeeper, "decide", leaky)
    w = _world(pki, broker, tmp_path, "en-2020-01-19")
    try:
        record = run_scenario(
            w.harness, w.relay, w.backend, SimDevice("SN0001"), get_scenario("normal_day"), 60.0
        )
    finally:
        w.harness.stop()
        w.backend.stop()
        w.relay.close()
    problems = [f.problem for f in audit_run(record).findings]
    assert any("'ip_address' is not disclosed for notification" in p for p in problems)


def test_bad_commands_get_clear_refusals_and_change_nothing(world: World) -> None:
    topic = "devices/SN0001/cmd"
    forged = world.harness.receipt("diagnostics", "en-2023-01-10")
    signature = str(forged["signature"])
    forged["signature"] = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    replay = world.harness.receipt("device_ai", "en-2023-01-10")
    bad = [
        b"{not json",
        b"[]",
        json.dumps({"id": "u1", "command": "reboot"}).encode(),
        json.dumps({"id": "u2", "command": "audio.set", "on": "loud"}).encode(),
        json.dumps({"id": "u3", "command": "consent.grant", "receipt": forged}).encode(),
        json.dumps(
            {
                "id": "u4",
                "command": "consent.grant",
                "receipt": world.harness.receipt("device_ai", "en-2020-01-19"),
            }
        ).encode(),
        json.dumps({"id": "u5", "command": "policy.accept", "version": "de-1999-01-01"}).encode(),
        b"{" + b" " * 20_000 + b"}",
        json.dumps({"id": "ok1", "command": "consent.grant", "receipt": replay}).encode(),
        json.dumps(
            {"id": "u6", "command": "consent.grant", "receipt": replay}
        ).encode(),  # replayed
    ]
    for payload in bad:
        world.backend.publish(topic, payload)
    got = world.backend.wait_for(
        lambda ms: sum(m.topic.endswith("cmd/result") for m in ms) >= len(bad), 20
    )
    results = [
        json.loads(m.payload)["data"]["command_result"]
        for m in got
        if m.topic.endswith("cmd/result")
    ]
    assert len(results) == len(bad)
    by_id = {r["id"]: r for r in results if r["id"]}
    assert "unknown command 'reboot'" in by_id["u1"]["reason"]
    assert "forged" in by_id["u3"]["reason"]
    assert "names policy en-2020-01-19" in by_id["u4"]["reason"]
    assert "unknown policy version" in by_id["u5"]["reason"]
    assert by_id["ok1"]["ok"] is True
    assert "replayed" in by_id["u6"]["reason"]
    assert sum(1 for r in results if not r["ok"]) == len(bad) - 1
    agent = world.harness.agent
    assert agent is not None
    assert agent.manifest.version == "en-2023-01-10"
    assert agent.consent_snapshot()["diagnostics"] == "never"
