"""Pure: the only place topic strings are assembled (see docs/mqtt.md for payloads).

Every device topic lives under ``<prefix>/<serial>/``; the broker ACL lets a device write
only there and read only its own ``cmd`` topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from edge.errors import InputError
from edge.model import Purpose

SERIAL_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9_-]{2,31}$")
DEFAULT_PREFIX = "devices"


class Channel(StrEnum):
    """What a topic carries; the value is the topic suffix."""

    AVAILABILITY = "availability"
    BIRTH = "birth"
    TELEMETRY = "telemetry"
    ALARM_EVENT = "alarm/event"
    ALARM_SNAPSHOT = "alarm/snapshot"
    CLIP = "clip"
    AI_DETECTION = "ai/detection"
    AI_PLATE = "ai/plate"
    DIAGNOSTICS = "diagnostics"
    DEVICE_LOG = "log"
    COUNTERS = "counters"
    COMMAND = "cmd"
    COMMAND_RESULT = "cmd/result"
    AUDIT_CHECKPOINT = "audit/checkpoint"


# Data channels published retained (the device's latest health), and the purposes whose
# withdrawal must clear them (an empty retained message deletes a retained topic).
RETAINED_CHANNELS = frozenset({Channel.DIAGNOSTICS})
RETAINED_BY_PURPOSE: dict[Purpose, tuple[Channel, ...]] = {
    Purpose.DIAGNOSTICS: (Channel.DIAGNOSTICS,),
}


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names of one device."""

    serial: str
    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        if not SERIAL_PATTERN.match(self.serial):
            raise InputError(
                f"serial: expected 3-32 characters A-Z, 0-9, '_' or '-', starting with a "
                f"letter or digit, got {self.serial!r}"
            )
        if not self.prefix or any(c in self.prefix for c in "#+") or self.prefix.endswith("/"):
            raise InputError(f"topic prefix: expected a plain topic level, got {self.prefix!r}")

    @property
    def root(self) -> str:
        return f"{self.prefix}/{self.serial}"

    def of(self, channel: Channel) -> str:
        return f"{self.root}/{channel.value}"

    def channel_of(self, topic: str) -> Channel | None:
        """The channel of one of this device's topics, or None for anything else."""
        head = self.root + "/"
        if not topic.startswith(head):
            return None
        try:
            return Channel(topic[len(head) :])
        except ValueError:
            return None
