"""Pure: what the hardware hands the agent (camera, microphone, AI chip, button, sensors).

These are the agent's own input types, so the agent does not depend on the simulator:
``firmware_sim`` and the real-camera reader both translate into them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from edge.media.frames import Frame
from edge.model import DetectionClass


@dataclass(frozen=True, slots=True)
class MotionAlarm:
    """The motion sensor fired: ``frame`` is the alarm frame, ``clip_frames`` the event."""

    at: datetime
    frame: Frame = field(repr=False)
    # The recent frames for the event clip: a tuple, or ``EncodedFrames`` (JPEGs decoded
    # one at a time) from a real camera, which keeps memory flat.
    clip_frames: Sequence[Frame] = field(default=(), repr=False)
    kind: str = "motion"


@dataclass(frozen=True, slots=True)
class AudioCaptured:
    """Microphone samples (int16 mono); only produced while the microphone may be open."""

    at: datetime
    samples: NDArray[np.int16] = field(repr=False)
    sample_rate_hz: int = 16_000


@dataclass(frozen=True, slots=True)
class AiDetected:
    """The camera's AI engine saw something (EN 2023 rows 17 and 19)."""

    at: datetime
    cls: DetectionClass
    confidence: float
    plate_text: str | None = None


@dataclass(frozen=True, slots=True)
class DiagnosticsSampled:
    """Device-use data (EN 2023 row 18): network type, errors, status, performance."""

    at: datetime
    values: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class DeviceLogged:
    """One device log line (EN 2023 row 23)."""

    at: datetime
    line: str


@dataclass(frozen=True, slots=True)
class ButtonPressed:
    """The device's physical button: ``withdraw_all`` withdraws every consent, unsigned."""

    at: datetime
    action: str = "withdraw_all"


@dataclass(frozen=True, slots=True)
class StatusDue:
    """Time to report device status telemetry (row 6)."""

    at: datetime


DeviceInput = (
    MotionAlarm
    | AudioCaptured
    | AiDetected
    | DiagnosticsSampled
    | DeviceLogged
    | ButtonPressed
    | StatusDue
)


@dataclass(frozen=True, slots=True)
class Tick:
    """Not from the hardware: wake the agent's loop for housekeeping (expiry, counters)."""

    at: datetime


@dataclass(frozen=True, slots=True)
class Stop:
    """Not from the hardware: shut down cleanly (publish ``stopped``, flush the audit)."""
