"""Pure: the simulated doorbell's firmware: scenario steps in, hardware outputs out.

``SimDevice.play(scenario, start)`` yields, in time order, what the camera, microphone,
motion sensor, AI chip, button and power/network would produce, as values:

* ``ToAgent``: an ``edge.inputs`` value the agent consumes (frames, samples, detections);
* ``FromApp``: what the user's app sends through the broker (consent, audio, policy);
* ``Fault``: a network or power event the runner makes real (proxy cut, kill -9...).

Frames carry their ground truth (where each plate was drawn) so the leak audit can check
every image that left. Everything is seeded: the same scenario and seed give the same
outputs, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from edge import inputs
from edge.media.frames import Frame
from edge.model import Box, DetectionClass
from firmware_sim import scenarios as sc
from firmware_sim.scene import RenderedFrame, render_doorway, render_street

MIC_RATE_HZ = 16_000


@dataclass(frozen=True, slots=True)
class ToAgent:
    at: datetime
    value: inputs.DeviceInput
    plate_boxes: tuple[Box, ...] = ()  # ground truth for MotionAlarm frames


@dataclass(frozen=True, slots=True)
class FromApp:
    at: datetime
    command: str  # consent.grant | consent.withdraw | audio.set | policy.accept
    argument: str | bool


@dataclass(frozen=True, slots=True)
class Fault:
    at: datetime
    kind: str  # network_down | drop | hang | reboot | power_cut | clock_skew
    seconds: float = 0.0


Output = ToAgent | FromApp | Fault


def mic_samples(
    rng: np.random.Generator, seconds: float
) -> np.ndarray[tuple[int], np.dtype[np.int16]]:
    """A doorbell chime (two tones) over room noise, int16 mono at 16 kHz."""
    n = max(1, int(seconds * MIC_RATE_HZ))
    t = np.arange(n) / MIC_RATE_HZ
    tone = np.where(t < seconds / 2, np.sin(2 * np.pi * 660 * t), np.sin(2 * np.pi * 520 * t))
    noise = rng.normal(0, 0.05, n)
    return np.asarray(np.clip((0.4 * tone + noise) * 32767, -32768, 32767), dtype=np.int16)


def diagnostics_values(rng: np.random.Generator) -> dict[str, object]:
    """Row 18's device-use data, plus fields no version discloses (they must be removed)."""
    return {
        "network_type": "wifi-2.4GHz",
        "error_data": [f"E{int(rng.integers(100, 999))}: rtsp session timeout"],
        "system_status": {"uptime_s": int(rng.integers(1000, 90000)), "temperature_c": 41},
        "performance_data": {
            "cpu_pct": int(rng.integers(5, 60)),
            "free_mb": int(rng.integers(10, 90)),
        },
        "mac_address": "02:00:00:00:00:01",
        "wifi_ssid": "HOME-NETWORK",  # not in any manifest: must never leave
        "gps_location": "52.2297,21.0122",  # not in any manifest: must never leave
    }


@dataclass
class SimDevice:
    """One simulated device; ``width``/``height`` are the alarm frame size."""

    serial: str
    seed: int = 0
    width: int = 1280
    height: int = 720
    clip_width: int = 640
    clip_height: int = 360
    clip_frames: int = 10
    images: Sequence[RenderedFrame] = field(default=())  # --images DIR: real photos, boxes if known
    # Real street photos (with their plate boxes) for the alarm snapshot of day street
    # scenes, in turn: the demo's (firmware_sim/streets). Clips stay rendered.
    streets: Sequence[RenderedFrame] = field(default=())
    _image_index: int = 0
    _street_index: int = 0

    def _rng(self, scenario: sc.Scenario, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, scenario.seed, index])

    def _render(
        self, rng: np.random.Generator, event: sc.MotionDetected, width: int, height: int
    ) -> RenderedFrame:
        if self.images:
            image = self.images[self._image_index % len(self.images)]
            self._image_index += 1
            return image
        if event.scene == "doorway":
            return render_doorway(rng, width, height, person=True, pet=False)
        return render_street(rng, width, height, event.plates, night=event.scene == "night")

    def play(self, scenario: sc.Scenario, start: datetime) -> Iterator[Output]:
        """Every output of the scenario, in time order.

        Outputs are scheduled at ``at`` (the script's time); what the device produces is
        stamped by its own real-time clock, which a ``ClockSkewed`` step moves: after an
        RTC jump, new data carries the jumped time, as on a real device."""
        skew = timedelta(0)
        for index, step in enumerate(scenario.steps):
            at = start + timedelta(seconds=step.at_s)
            rng = self._rng(scenario, index)
            yield from self._outputs(step.event, at, rng, at + skew)
            if isinstance(step.event, sc.ClockSkewed):
                skew += timedelta(seconds=step.event.seconds)

    def _outputs(
        self, event: sc.SimEvent, at: datetime, rng: np.random.Generator, stamp: datetime
    ) -> Iterator[Output]:
        if isinstance(event, sc.MotionDetected):
            if self.streets and event.scene == "street" and not self.images:
                alarm = self.streets[self._street_index % len(self.streets)]
                self._street_index += 1
            else:
                alarm = self._render(rng, event, self.width, self.height)
            clip: tuple[Frame, ...] = ()
            if event.clip:
                clip = tuple(
                    self._render(
                        np.random.default_rng([int(rng.integers(1 << 30)), i]),
                        event,
                        self.clip_width,
                        self.clip_height,
                    ).frame
                    for i in range(self.clip_frames)
                )
            kind = "motion" if event.scene != "doorway" else "doorbell_motion"
            yield ToAgent(at, inputs.MotionAlarm(stamp, alarm.frame, clip, kind), alarm.plate_boxes)
        elif isinstance(event, sc.AiDetected):
            plate = event.plate_text if event.cls is DetectionClass.PLATE else None
            yield ToAgent(at, inputs.AiDetected(stamp, event.cls, event.confidence, plate))
        elif isinstance(event, sc.SoundHeard):
            yield ToAgent(
                at, inputs.AudioCaptured(stamp, mic_samples(rng, event.seconds), MIC_RATE_HZ)
            )
        elif isinstance(event, sc.ButtonPressed):
            yield ToAgent(at, inputs.ButtonPressed(stamp))
        elif isinstance(event, sc.ConsentGranted):
            yield FromApp(at, "consent.grant", event.purpose)
        elif isinstance(event, sc.ConsentWithdrawn):
            yield FromApp(at, "consent.withdraw", event.purpose)
        elif isinstance(event, sc.AudioToggled):
            yield FromApp(at, "audio.set", event.on)
        elif isinstance(event, sc.PolicySwitched):
            yield FromApp(at, "policy.accept", event.version)
        elif isinstance(event, sc.NetworkDown):
            yield Fault(at, "network_down", event.seconds)
        elif isinstance(event, sc.ConnectionDropped):
            yield Fault(at, "drop")
        elif isinstance(event, sc.LinkHung):
            yield Fault(at, "hang", event.seconds)
        elif isinstance(event, sc.Rebooted):
            yield Fault(at, "reboot")
        elif isinstance(event, sc.PowerCut):
            yield Fault(at, "power_cut")
        elif isinstance(event, sc.ClockSkewed):
            yield Fault(at, "clock_skew", event.seconds)
        elif isinstance(event, sc.DiagnosticsSampled):
            yield ToAgent(at, inputs.DiagnosticsSampled(stamp, diagnostics_values(rng)))
        elif isinstance(event, sc.DeviceLogged):
            yield ToAgent(at, inputs.DeviceLogged(stamp, event.line))
        elif isinstance(event, sc.StatusReported):
            yield ToAgent(at, inputs.StatusDue(stamp))
