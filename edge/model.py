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


class ConsentStatus(StrEnum):
    """Where one consent-based purpose stands under the accepted version (the values are
    what the birth, the status reply and the audit trail carry)."""

    GRANTED = "granted"
    WITHDRAWN = "withdrawn"
    LAPSED = "lapsed"  # granted under another version that does not carry it
    NEVER = "never"  # never granted nor withdrawn


class Count(StrEnum):
    """The agent's own counters (reported on ``counters``; the values are the wire keys).

    Counters made from another enum's values (``dropped_<DropReason>``, ``removed_<reason>``)
    and the media pipeline's counts are formatted where they arise."""

    # the camera fired while the agent's queue was full
    ALARMS_DROPPED_BUSY = "alarms_dropped_busy"
    # the audit trail is over its cap, every old segment still within retention (1 or 0)
    AUDIT_OVER_CAP = "audit_over_cap"
    # the oldest audit segment deleted past retention, over the cap (a record says so)
    AUDIT_SEGMENTS_DELETED = "audit_segments_deleted"
    # microphone samples arrived while audio is off: discarded
    AUDIO_REFUSED_AT_SOURCE = "audio_refused_at_source"
    # an audio track removed from an outgoing clip (rule 5)
    AUDIO_TRACKS_STRIPPED = "audio_tracks_stripped"
    # availability not published: the gate removed online_status
    AVAILABILITY_DENIED = "availability_denied"
    # a live camera stream dropped and was reopened
    CAMERA_GAPS = "camera_gaps"
    # a camera source could not be opened (retried with backoff)
    CAMERA_OPEN_FAILURES = "camera_open_failures"
    # a clip that failed the audio rule or could not be checked
    CLIPS_REFUSED = "clips_refused"
    # a malformed command (answered on cmd/result)
    COMMANDS_REFUSED = "commands_refused"
    # a connection attempt failed
    CONNECT_FAILURES = "connect_failures"
    # an established connection was lost
    CONNECTION_LOST = "connection_lost"
    # the consent state could not be saved (retried)
    CONSENT_WRITE_FAILED = "consent_write_failed"
    # a message the gate let nothing of leave
    DENIED = "denied"
    # an item dropped because the disk was full
    DROPPED_DISK_FULL = "dropped_disk_full"
    # an unstored item purged when its purpose stopped
    DROPPED_PURGED = "dropped_purged"
    # the policy evaluation failed: nothing left
    GATE_FAILURES = "gate_failures"
    # a malformed device input, refused alone
    INPUTS_REFUSED = "inputs_refused"
    # a bug: an unexpected exception, logged with its traceback
    INTERNAL_ERRORS = "internal_errors"
    # the broker refused a publish (PUBACK >= 0x80)
    REFUSED_BY_BROKER = "refused_by_broker"
    # the agent state could not be saved (kept in memory)
    STATE_WRITE_FAILED = "state_write_failed"
    # the outbox could not write: disk full
    STORE_FULL = "store_full"
    # a transport error while handling an event (retried)
    TRANSPORT_ERRORS = "transport_errors"
