"""Pure: scripted, seeded scenarios as data.

A scenario is a list of steps at simulated times (seconds from its start). Events are
past-tense facts about the device's world; ``firmware_sim.device`` turns them into what
the hardware hands the agent, and the runner turns network and power events into real
faults on a real link.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from edge.model import DetectionClass
from firmware_sim.errors import SimError
from firmware_sim.scene import PlateStyle


@dataclass(frozen=True, slots=True)
class MotionDetected:
    scene: str = "street"  # street | doorway | night
    plates: tuple[PlateStyle, ...] = (PlateStyle.US,)
    clip: bool = True


@dataclass(frozen=True, slots=True)
class AiDetected:
    cls: DetectionClass
    confidence: float = 0.9
    plate_text: str | None = None


@dataclass(frozen=True, slots=True)
class SoundHeard:
    seconds: float = 3.0


@dataclass(frozen=True, slots=True)
class ButtonPressed:
    """The user pressed the device button: every consent is withdrawn, unsigned."""


@dataclass(frozen=True, slots=True)
class ConsentGranted:
    purpose: str


@dataclass(frozen=True, slots=True)
class ConsentWithdrawn:
    purpose: str


@dataclass(frozen=True, slots=True)
class AudioToggled:
    on: bool


@dataclass(frozen=True, slots=True)
class PolicySwitched:
    version: str


@dataclass(frozen=True, slots=True)
class NetworkDown:
    seconds: float


@dataclass(frozen=True, slots=True)
class ConnectionDropped:
    """The link dies at once (RST), then comes back."""


@dataclass(frozen=True, slots=True)
class LinkHung:
    """Bytes stop flowing with no FIN; keepalive must notice."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Rebooted:
    """A clean reboot: the agent stops (publishing 'stopped') and starts again."""


@dataclass(frozen=True, slots=True)
class PowerCut:
    """Power lost: the agent dies without goodbye (kill -9) and starts again."""


@dataclass(frozen=True, slots=True)
class ClockSkewed:
    seconds: float


@dataclass(frozen=True, slots=True)
class DiagnosticsSampled:
    """The device sampled its health (EN 2023 row 18 data)."""


@dataclass(frozen=True, slots=True)
class DeviceLogged:
    line: str


@dataclass(frozen=True, slots=True)
class StatusReported:
    """Time for device status telemetry (row 6)."""


SimEvent = (
    MotionDetected
    | AiDetected
    | SoundHeard
    | ButtonPressed
    | ConsentGranted
    | ConsentWithdrawn
    | AudioToggled
    | PolicySwitched
    | NetworkDown
    | ConnectionDropped
    | LinkHung
    | Rebooted
    | PowerCut
    | ClockSkewed
    | DiagnosticsSampled
    | DeviceLogged
    | StatusReported
)


@dataclass(frozen=True, slots=True)
class Step:
    at_s: float
    event: SimEvent


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    seed: int
    steps: tuple[Step, ...]

    @property
    def duration_s(self) -> float:
        return self.steps[-1].at_s if self.steps else 0.0

    @property
    def app_steps(self) -> tuple[str, ...]:
        """The steps the user's app performs through the broker (a backend identity that
        may write the device's command topic is needed to play them)."""
        app = (ConsentGranted, ConsentWithdrawn, AudioToggled, PolicySwitched)
        return tuple(type(s.event).__name__ for s in self.steps if isinstance(s.event, app))


ALL_CONSENTS = ("ai_detection", "device_ai", "diagnostics", "device_log")
STREET = (PlateStyle.US, PlateStyle.EU, PlateStyle.MERCOSUR, PlateStyle.THAI, PlateStyle.DARK)


def _steps(*pairs: tuple[float, SimEvent]) -> tuple[Step, ...]:
    return tuple(Step(at, event) for at, event in sorted(pairs, key=lambda p: p[0]))


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "normal_day",
            "A visitor at the door, a parcel, the doorbell's status and health reports.",
            1,
            _steps(
                (0, StatusReported()),
                (5, SoundHeard(3)),
                (8, MotionDetected("doorway", (), clip=True)),
                (8.5, AiDetected(DetectionClass.HUMAN, 0.93)),
                (30, DiagnosticsSampled()),
                (40, DeviceLogged("wifi: roamed to a stronger access point")),
                (60, MotionDetected("doorway", (), clip=False)),
                (60.5, AiDetected(DetectionClass.PET, 0.81)),
                (90, StatusReported()),
            ),
        ),
        Scenario(
            "street_parked_cars",
            "The camera faces a street: five parked cars with plates of five countries.",
            2,
            _steps(
                (0, StatusReported()),
                (3, MotionDetected("street", STREET, clip=True)),
                (3.5, AiDetected(DetectionClass.VEHICLE, 0.88)),
                (3.6, AiDetected(DetectionClass.PLATE, 0.8, "WX 4821K")),
                (20, MotionDetected("street", (PlateStyle.EU, PlateStyle.THAI), clip=False)),
            ),
        ),
        Scenario(
            "night",
            "Night, infrared: grey, low-contrast frames with plates.",
            3,
            _steps(
                (0, StatusReported()),
                (10, MotionDetected("night", (PlateStyle.US, PlateStyle.EU), clip=True)),
                (10.5, AiDetected(DetectionClass.VEHICLE, 0.7)),
            ),
        ),
        Scenario(
            "offline_hour",
            "The network is down for an hour; alarms queue, then all arrive in order.",
            4,
            _steps(
                (0, StatusReported()),
                (1, NetworkDown(3600)),
                (60, MotionDetected("street", (PlateStyle.US,), clip=False)),
                (600, MotionDetected("doorway", (), clip=False)),
                (1800, MotionDetected("street", (PlateStyle.EU,), clip=True)),
                (3000, DiagnosticsSampled()),
                (3700, StatusReported()),
            ),
        ),
        Scenario(
            "consent_withdrawn_mid_queue",
            "Diagnostics consent granted; the link goes down while items queue; consent is "
            "withdrawn (device button) before the link is back: none of them may leave.",
            5,
            _steps(
                (0, ConsentGranted("diagnostics")),
                (1, ConsentGranted("device_log")),
                (2, DiagnosticsSampled()),
                (5, NetworkDown(120)),
                (10, DiagnosticsSampled()),
                (20, DeviceLogged("disk: 82% full")),
                (30, DiagnosticsSampled()),
                (60, ButtonPressed()),
                (61, MotionDetected("doorway", (), clip=False)),
                (130, DiagnosticsSampled()),
                (131, StatusReported()),
            ),
        ),
        Scenario(
            "audio_off",
            "Audio is recorded with clips, then the user turns audio off: no microphone, no "
            "audio stream in any clip after that.",
            6,
            _steps(
                (0, SoundHeard(3)),
                (2, MotionDetected("doorway", (), clip=True)),
                (10, AudioToggled(False)),
                (12, SoundHeard(3)),
                (14, MotionDetected("doorway", (), clip=True)),
                (30, AudioToggled(True)),
                (31, SoundHeard(2)),
                (33, MotionDetected("doorway", (), clip=True)),
            ),
        ),
        Scenario(
            "policy_switch",
            "The user accepts the 2023 policy, grants consents, then goes back to 2020: the "
            "consent-based purposes stop before the next message.",
            7,
            _steps(
                (0, PolicySwitched("en-2020-01-19")),
                (1, DiagnosticsSampled()),
                (2, AiDetected(DetectionClass.PLATE, 0.9, "KA 123 AB")),
                (5, PolicySwitched("en-2023-01-10")),
                (6, ConsentGranted("diagnostics")),
                (6.5, ConsentGranted("device_ai")),
                (7, DiagnosticsSampled()),
                (8, AiDetected(DetectionClass.PLATE, 0.9, "KA 123 AB")),
                (10, PolicySwitched("en-2020-01-19")),
                (11, DiagnosticsSampled()),
                (12, AiDetected(DetectionClass.PLATE, 0.9, "KA 123 AB")),
                (13, MotionDetected("street", (PlateStyle.US,), clip=False)),
            ),
        ),
        Scenario(
            "reboot_during_upload",
            "Clips are uploading when the power is cut; after the restart nothing is lost.",
            8,
            _steps(
                (0, MotionDetected("street", (PlateStyle.US,), clip=True)),
                (0.5, MotionDetected("doorway", (), clip=True)),
                (1, MotionDetected("street", (PlateStyle.EU,), clip=True)),
                (1.2, PowerCut()),
                (5, MotionDetected("doorway", (), clip=False)),
                (8, Rebooted()),
                (10, StatusReported()),
            ),
        ),
        Scenario(
            "rtc_skew",
            "The real-time clock jumps forward eight days while offline: queued alarms are "
            "past their 7-day retention and are dropped, never sent late.",
            9,
            _steps(
                (0, NetworkDown(30)),
                (1, MotionDetected("doorway", (), clip=False)),
                (2, MotionDetected("street", (PlateStyle.US,), clip=False)),
                (5, ClockSkewed(8 * 24 * 3600)),
                (40, StatusReported()),
            ),
        ),
        Scenario(
            "flaky_link",
            "The connection drops and then hangs (no FIN) during a burst of alarms.",
            10,
            _steps(
                (0, MotionDetected("doorway", (), clip=False)),
                (1, ConnectionDropped()),
                (1.5, MotionDetected("doorway", (), clip=False)),
                (3, LinkHung(4)),
                (3.5, MotionDetected("street", (PlateStyle.DARK,), clip=False)),
                (12, StatusReported()),
            ),
        ),
    )
}


def get_scenario(name: str) -> Scenario:
    """Raises SimError naming the known scenarios."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise SimError(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})") from None


def consent_purposes(scenario: Scenario) -> Mapping[str, int]:
    """How many grants of each purpose the scenario contains."""
    counts: dict[str, int] = {}
    for step in scenario.steps:
        if isinstance(step.event, ConsentGranted):
            counts[step.event.purpose] = counts.get(step.event.purpose, 0) + 1
    return counts
