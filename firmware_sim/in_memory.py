"""Shell-light: a scenario through the real agent on the in-memory link, with simulated
time only: deterministic, no sockets, no sleeps. It returns the same ``RunRecord`` as the
network runner, so the same independent leak audit checks it.
"""

from __future__ import annotations

import json
import queue
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.config import (
    AgentConfig,
    AudioConfig,
    BrokerConfig,
    DeviceConfig,
    MediaConfig,
    PolicyConfig,
    TlsConfig,
)
from edge.inputs import AudioCaptured, MotionAlarm
from edge.policy.receipts import ReceiptBody, sign_receipt
from edge.session import Endpoint, TransportEvent
from edge.shell.agent import Agent, Stop
from firmware_sim.device import FromApp, SimDevice, ToAgent
from firmware_sim.memory_link import MemoryBroker, MemoryTransport
from firmware_sim.observer import Observed
from firmware_sim.runner import AlarmTruth, Moment, RunRecord
from firmware_sim.scenarios import Scenario

START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


class ManualClock:
    """Time moves only when told (the trio MockClock idea)."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.at_s = 0.0
        self.skew = timedelta(0)

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.at_s) + self.skew

    def monotonic(self) -> float:
        return self.at_s


class MemoryDevice:
    """One real agent on the in-memory link with a manual clock: build it, put inputs on
    ``agent.events``, send commands as the backend would, ``drain()``, read the broker.

    ``restart()`` builds a new agent on the same state folder (a reboot)."""

    def __init__(
        self,
        workdir: Path,
        policy: str,
        serial: str = "SN0001",
        audio: bool | None = None,
        clip_fps: int = 5,
    ) -> None:
        self.serial = serial
        self.clock = ManualClock(START)
        self.broker = MemoryBroker(time_s=lambda: self.clock.at_s)
        self.app_key = Ed25519PrivateKey.generate()
        self.config = AgentConfig(
            device=DeviceConfig(serial=serial, state_dir=workdir / "state"),
            policy=PolicyConfig(version=policy),
            broker=BrokerConfig(endpoints=(Endpoint("memory", 1),)),
            tls=TlsConfig(ca=Path(), cert=Path(), key=Path()),
            media=MediaConfig(clip_fps=clip_fps, anonymiser_budget_ms=60_000),
            audio=AudioConfig(enabled=audio),
        )
        self._receipts = 0
        self.agent = self.new_agent()

    def _factory(self, client_id: str, events: queue.Queue[TransportEvent]) -> MemoryTransport:
        return MemoryTransport(client_id, events, self.broker)

    def new_agent(self) -> Agent:
        agent = Agent(
            self.config,
            self.clock,
            self._factory,
            app_public_key=self.app_key.public_key(),
            synchronous="NORMAL",
        )
        agent.start()
        return agent

    def restart(self, power_cut: bool = False) -> Agent:
        self.drain()
        if power_cut:
            self.agent.kill()
        else:
            self.agent.handle(Stop())
        self.agent = self.new_agent()
        return self.agent

    def drain(self) -> None:
        """Step the agent until nothing is left to handle (simulated time stands still)."""
        for _ in range(10_000):
            if self.agent.step(0.0) == 0 and self.agent.events.empty():
                return

    def command(self, name: str, argument: str | bool | None = None) -> str:
        """Send a command as the backend would (a grant with a receipt signed by the
        app key); returns its id."""
        command_id = f"c-{uuid.uuid4().hex[:6]}"
        body: dict[str, object] = {"id": command_id, "command": name}
        if name == "consent.grant":
            self._receipts += 1
            receipt = ReceiptBody(
                self.serial,
                str(argument),
                self.agent.manifest.version,
                self.clock.now(),
                self._receipts,
            )
            body["receipt"] = sign_receipt(self.app_key, receipt).to_json()
        elif name == "consent.withdraw":
            body["purpose"] = argument
        elif name == "audio.set":
            body["on"] = bool(argument)
        elif name == "policy.accept":
            body["version"] = argument
        self.broker.send_command(self.serial, json.dumps(body).encode())
        return command_id

    def results(self) -> dict[str, dict[str, object]]:
        """Command results received by the broker, by command id."""
        found: dict[str, dict[str, object]] = {}
        for message in self.broker.messages:
            if message.topic.endswith("/cmd/result") and message.payload:
                result = json.loads(message.payload).get("data", {}).get("command_result")
                if isinstance(result, dict):
                    found[str(result["id"])] = result
        return found


def run_in_memory(
    scenario: Scenario,
    policy: str,
    workdir: Path,
    consents: tuple[str, ...] = (),
    audio: bool | None = None,
    serial: str = "SN0001",
) -> tuple[RunRecord, MemoryBroker]:
    device = MemoryDevice(workdir, policy, serial, audio)
    clock, broker = device.clock, device.broker
    agent = device.agent

    def drain(current: Agent) -> None:
        del current
        device.drain()

    def command(current: Agent, name: str, argument: str | bool) -> None:
        del current
        device.command(name, argument)

    record = RunRecord(scenario.name, serial, policy, speed=1.0, mono0=0.0, audio_setting=audio)
    drain(agent)
    record.consent_at_start = agent.consent_snapshot()
    record.audio_setting = agent.audio_on

    def note(kind: str, detail: str = "") -> None:
        record.timeline.append(Moment(clock.at_s, clock.now(), kind, detail))

    for purpose in consents:
        note("consent.grant", json.dumps({"argument": purpose}))
        command(agent, "consent.grant", purpose)
        drain(agent)
    up_at: float | None = None
    for out in SimDevice(serial).play(scenario, START):
        at = (out.at - START).total_seconds()
        if up_at is not None and up_at <= at:
            clock.at_s = up_at
            broker.come_up()
            note("link.up")
            up_at = None
            drain(agent)
        clock.at_s = max(clock.at_s, at)
        if isinstance(out, ToAgent):
            if isinstance(out.value, AudioCaptured) and not agent.audio_on:
                record.mic_refused += 1
                continue
            if isinstance(out.value, MotionAlarm):
                record.alarms[out.value.at.isoformat()] = AlarmTruth(
                    out.value.frame, out.plate_boxes
                )
            note(f"input.{type(out.value).__name__}")
            agent.events.put(out.value)
        elif isinstance(out, FromApp):
            note(out.command, json.dumps({"argument": out.argument}))
            command(agent, out.command, out.argument)
        elif out.kind == "network_down":
            broker.go_down()
            up_at = at + out.seconds
            note("link.down")
        elif out.kind in {"drop", "hang"}:
            transport = agent.transport
            if isinstance(transport, MemoryTransport):
                transport.lose(out.kind)
        elif out.kind in {"reboot", "power_cut"}:
            agent = device.restart(power_cut=out.kind == "power_cut")
        elif out.kind == "clock_skew":
            clock.skew += timedelta(seconds=out.seconds)
        drain(agent)
    if up_at is not None:
        clock.at_s = max(clock.at_s, up_at)
        broker.come_up()
        drain(agent)
    record.drained = agent.is_idle()
    record.counters = {**agent.outbox.counters(), **dict(agent.counters)}
    record.messages = [Observed(m.topic, m.payload, m.retain, 1, m.at_s) for m in broker.messages]
    agent.handle(Stop())
    return record, broker
