"""Pure: value types shared by the core (purposes, priorities, boxes).

Every type here is a frozen, slotted dataclass or a StrEnum; nothing does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum


class Purpose(StrEnum):
    """Why a message leaves the device; each maps to rows of a policy version.

    Values match the manifest files and the config text.
    """

    DEVICE_STATUS = "device_status"  # row 6 activate/configure: SN, MAC, model, FW, online status
    ADD_DEVICE = "add_device"  # row 3: SN, model, device name, time zone, DST status
    NOTIFICATION = "notification"  # row 11: alarm event, alarm snapshot, push notice id
    CLOUD_STORAGE = "cloud_storage"  # row 12: event clips (video record), channel info
    AI_DETECTION = "ai_detection"  # EN 2023 row 17 (consent): human / vehicle / pet events
    DEVICE_AI = "device_ai"  # EN 2023 row 19 (consent): licence plate number
    DIAGNOSTICS = "diagnostics"  # EN 2023 row 18 (consent): network type, errors, performance
    DEVICE_LOG = "device_log"  # EN 2023 row 23 (consent): device log
    AGENT = "agent"  # the agent's own declaration and counters: no personal data


class Priority(IntEnum):
    """Send order of the outbox; a lower value is sent first and dropped last."""

    STATUS = 0
    ALARM_EVENT = 1
    SNAPSHOT = 2
    CLIP = 3
    DIAGNOSTICS = 4


class DetectionClass(StrEnum):
    """Classes the camera's AI engine reports (EN 2023 row 19)."""

    HUMAN = "human"
    VEHICLE = "vehicle"
    PET = "pet"
    PLATE = "plate"


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned pixel box: integer pixels, half-open ``[x, x+w) x [y, y+h)``.

    ``x``/``y`` is the top-left corner; ``w``/``h`` are positive. There is no other box
    type in the code base; conversions are named functions (``box_from_xyxy``).
    """

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        return self.w * self.h

    def clip(self, width: int, height: int) -> Box | None:
        """Return the part of the box inside a ``width`` x ``height`` image, or None."""
        x0, y0 = max(self.x, 0), max(self.y, 0)
        x1, y1 = min(self.x + self.w, width), min(self.y + self.h, height)
        if x1 <= x0 or y1 <= y0:
            return None
        return Box(x0, y0, x1 - x0, y1 - y0)


def box_from_xyxy(x0: int, y0: int, x1: int, y1: int) -> Box:
    """Build a Box from corner coordinates (``x1``/``y1`` exclusive)."""
    return Box(x0, y0, x1 - x0, y1 - y0)
