"""Shell: plays a scenario against the real agent, over a real (faultable) link and broker.

The device's outputs are delivered at their simulated times, compressed by ``speed``:
sensor data goes into the agent's queue (the microphone only while the agent says it may
be open), the user's app sends commands through the broker, and network and power
faults are made real (the link relay is cut, hung or dropped; the agent is killed or
restarted). Everything that happened is kept as a timeline, with the ground truth of
every frame, for the summary and for the independent leak audit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from edge.inputs import AudioCaptured, MotionAlarm
from edge.media.frames import Frame
from edge.model import Box
from firmware_sim.device import FromApp, Output, SimDevice, ToAgent
from firmware_sim.errors import SimError
from firmware_sim.harness import AgentHarness
from firmware_sim.link import LinkRelay
from firmware_sim.observer import Observed
from firmware_sim.scenarios import Scenario


class Backend(Protocol):
    """What the runner needs of the backend: send commands, see what arrived."""

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None: ...

    def snapshot(self) -> list[Observed]: ...

    def wait_for(
        self, predicate: Callable[[list[Observed]], bool], timeout_s: float = 10.0
    ) -> list[Observed]: ...


class NoBackend:
    """Running against someone else's broker without a backend identity: nothing is
    observed, and a step that needs the app fails (``SimError``) instead of being skipped:
    a scenario that never switched its policy must not look as if it had."""

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        raise SimError(
            f"cannot send the app's command on {topic}: no backend identity "
            "(give --backend-cert and --backend-key)"
        )

    def snapshot(self) -> list[Observed]:
        return []

    def wait_for(
        self, predicate: Callable[[list[Observed]], bool], timeout_s: float = 10.0
    ) -> list[Observed]:
        return []


@dataclass(frozen=True, slots=True)
class Moment:
    """Something the runner did, when (real monotonic seconds and simulated time)."""

    real_s: float
    sim_at: datetime
    kind: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class AlarmTruth:
    frame: Frame = field(repr=False)
    plate_boxes: tuple[Box, ...]


@dataclass
class RunRecord:
    scenario: str
    serial: str
    policy: str
    timeline: list[Moment] = field(default_factory=list)
    alarms: dict[str, AlarmTruth] = field(default_factory=dict)  # alarm time (ISO) -> truth
    messages: list[Observed] = field(default_factory=list)
    mic_refused: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    drained: bool = True
    wall_s: float = 0.0
    mono0: float = 0.0  # real monotonic time of the start; observer times are absolute
    speed: float = 1.0
    audio_setting: bool | None = None
    consent_at_start: dict[str, str] = field(default_factory=dict)
    unanswered: list[str] = field(default_factory=list)  # app commands sent, never answered


Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    """No progress output."""


def send_command(
    harness: AgentHarness, backend: Backend, command: str, argument: str | bool, wait_s: float
) -> bool:
    """Send one command as the user's app would; wait for its result when the link is up."""
    topic = f"devices/{harness.setup.serial}/cmd"
    before = sum(m.topic == f"{topic}/result" for m in backend.snapshot())
    backend.publish(topic, harness.command_payload(command, argument))
    if wait_s <= 0:
        return True
    got = backend.wait_for(
        lambda ms: sum(m.topic == f"{topic}/result" for m in ms) > before, wait_s
    )
    return sum(m.topic == f"{topic}/result" for m in got) > before


def run_scenario(
    harness: AgentHarness,
    relay: LinkRelay,
    backend: Backend,
    device: SimDevice,
    scenario: Scenario,
    speed: float,
    consents: tuple[str, ...] = (),
    progress: Progress = _quiet,
    drain_timeout_s: float = 30.0,
) -> RunRecord:
    """Play ``scenario``; the harness's agent must be running and connected."""
    agent = harness.agent
    policy = agent.manifest.version if agent is not None else harness.config.policy.version
    record = RunRecord(scenario.name, harness.setup.serial, policy)
    first = len(backend.snapshot())
    mono0 = time.monotonic()
    record.mono0, record.speed = mono0, speed
    record.audio_setting = agent.audio_on if agent is not None else harness.config.audio.enabled
    record.consent_at_start = agent.consent_snapshot() if agent is not None else {}
    start = harness.clock.now()

    def note(kind: str, detail: str = "") -> None:
        record.timeline.append(Moment(time.monotonic() - mono0, harness.clock.now(), kind, detail))

    for purpose in consents:
        ok = send_command(harness, backend, "consent.grant", purpose, 5.0)
        note("consent.grant", f"{purpose} ok={ok}")
        if not ok:
            record.unanswered.append(f"consent.grant {purpose}")
    timers: list[tuple[float, str]] = []  # (real time, action)

    def run_timers(until: float) -> None:
        for due, action in sorted(timers):
            if due > until:
                continue
            timers.remove((due, action))
            if action == "up":
                relay.up()
            elif action == "resume":
                relay.resume()
            note(f"link.{action}")

    outputs: list[Output] = list(device.play(scenario, start))
    for index, out in enumerate(outputs):
        due = (out.at - start).total_seconds() / speed
        while True:
            now = time.monotonic() - mono0
            run_timers(now)
            pending = [t for t, _ in timers if t <= due]
            if now >= due and not pending:
                break
            time.sleep(max(0.0, min(0.02, due - now)))
        progress(f"{scenario.name}: step {index + 1}/{len(outputs)} {type(out).__name__}")
        _deliver(out, harness, relay, backend, record, note, timers, speed, mono0)
    run_timers(float("inf"))
    relay.up()
    relay.resume()
    if harness.agent is None:
        harness.start()
    harness.wait_connected(15)
    record.drained = harness.wait_drained(drain_timeout_s)
    time.sleep(0.3)  # let the last deliveries reach the observer
    record.messages = backend.snapshot()[first:]
    agent = harness.agent
    if agent is not None:
        record.counters = {**agent.outbox.counters(), **dict(agent.counters)}
    record.wall_s = time.monotonic() - mono0
    return record


def _deliver(
    out: Output,
    harness: AgentHarness,
    relay: LinkRelay,
    backend: Backend,
    record: RunRecord,
    note: Callable[[str, str], None],
    timers: list[tuple[float, str]],
    speed: float,
    mono0: float,
) -> None:
    now = time.monotonic() - mono0
    if isinstance(out, ToAgent):
        value = out.value
        agent = harness.agent
        if isinstance(value, AudioCaptured) and (agent is None or not agent.audio_on):
            record.mic_refused += 1  # the microphone is not opened: nothing is captured
            note("mic.closed", "")
            return
        if isinstance(value, MotionAlarm):
            record.alarms[value.at.isoformat()] = AlarmTruth(value.frame, out.plate_boxes)
        harness.put(value)
        note(f"input.{type(value).__name__}", "")
    elif isinstance(out, FromApp):
        wait = 0.0 if relay.is_down or harness.agent is None else 5.0
        note(out.command, json.dumps({"argument": out.argument}))
        ok = send_command(harness, backend, out.command, out.argument, wait)
        note(f"{out.command}.answered", json.dumps({"argument": out.argument, "answered": ok}))
        if not ok:
            record.unanswered.append(f"{out.command} {out.argument}")
    elif out.kind == "network_down":
        relay.down()
        timers.append((now + out.seconds / speed, "up"))
        note("link.down", f"{out.seconds:.0f} s simulated")
    elif out.kind == "drop":
        relay.drop()
        note("link.drop", "")
    elif out.kind == "hang":
        relay.hang()
        timers.append((now + max(out.seconds / speed, 0.1), "resume"))
        note("link.hang", f"{out.seconds:.0f} s simulated")
    elif out.kind == "reboot":
        harness.stop()
        harness.start()
        note("power.reboot", "")
    elif out.kind == "power_cut":
        harness.kill()
        note("power.cut", "")
        harness.start()
        note("power.on", "")
    elif out.kind == "clock_skew":
        # The RTC jumps after what the device produced before it was handled, as on a
        # device; without this wait the jump could overtake inputs still in the queue.
        harness.wait_handled(10.0)
        harness.clock.jump(out.seconds)
        note("clock.skew", f"{out.seconds:+.0f} s")
