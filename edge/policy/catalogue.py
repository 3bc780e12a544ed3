"""Pure: the catalogue of every field the device can produce, typed.

A field that is in no manifest can never leave: the gate keeps a field only when the
accepted version's manifest has an entry for (purpose, field). Agent metadata fields
(policy version, counters, command results) carry no personal data and are allowed only
under ``Purpose.AGENT``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FieldName(StrEnum):
    # Device identity and configuration (rows 3 and 6).
    SERIAL_NUMBER = "serial_number"
    MAC_ADDRESS = "mac_address"
    MODEL = "model"
    FIRMWARE_VERSION = "firmware_version"
    ONLINE_STATUS = "online_status"
    CHANNEL_INFO = "channel_info"
    CONFIGURATION = "configuration"
    IP_ADDRESS = "ip_address"
    DEVICE_NAME = "device_name"
    TIME_ZONE = "time_zone"
    DST_STATUS = "dst_status"
    WIFI_INFO = "wifi_info"
    COUNTRY = "country"
    LOCATION = "location"
    REGISTRATION_DATE = "registration_date"
    DEVICE_UNIQUE_ID = "device_unique_id"
    # Alarms and media (rows 11, 12, 15).
    ALARM_EVENT = "alarm_event"
    PUSH_NOTICE_ID = "push_notice_id"
    ALARM_SNAPSHOT = "alarm_snapshot"
    EVENT_CLIP = "event_clip"
    AUDIO_TRACK = "audio_track"
    # The camera's AI engine (EN 2023 row 19).
    AI_HUMAN = "ai_human"
    AI_VEHICLE = "ai_vehicle"
    AI_PET = "ai_pet"
    PLATE_NUMBER = "plate_number"
    # Device use and logs (EN 2023 rows 18 and 23).
    NETWORK_TYPE = "network_type"
    OPERATION_LOG = "operation_log"
    NETWORK_LOG = "network_log"
    ERROR_DATA = "error_data"
    SYSTEM_STATUS = "system_status"
    PERFORMANCE_DATA = "performance_data"
    DEVICE_LOG = "device_log"
    # Agent metadata: no personal data (Purpose.AGENT only).
    POLICY_VERSION = "policy_version"
    ENABLED_PURPOSES = "enabled_purposes"
    AGENT_VERSION = "agent_version"
    SESSION_COUNTER = "session_counter"
    DECLARATION = "declaration"
    DROP_COUNTERS = "drop_counters"
    COMMAND_RESULT = "command_result"
    AUDIT_CHECKPOINT = "audit_checkpoint"
    AGENT_STATUS = "agent_status"


class Kind(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    FLAG = "flag"
    RECORD = "record"  # a JSON object
    LIST = "list"
    JPEG = "jpeg"
    CLIP = "clip"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: FieldName
    kind: Kind
    personal: bool  # personal data (or device data linkable to a person)
    doc: str


def _spec(name: FieldName, kind: Kind, doc: str, personal: bool = True) -> FieldSpec:
    return FieldSpec(name, kind, personal, doc)


CATALOGUE: dict[FieldName, FieldSpec] = {
    s.name: s
    for s in (
        _spec(FieldName.SERIAL_NUMBER, Kind.TEXT, "device serial number (SN)"),
        _spec(FieldName.MAC_ADDRESS, Kind.TEXT, "MAC address of the network interface"),
        _spec(FieldName.MODEL, Kind.TEXT, "device model"),
        _spec(FieldName.FIRMWARE_VERSION, Kind.TEXT, "firmware version"),
        _spec(FieldName.ONLINE_STATUS, Kind.TEXT, "online / offline / stopped"),
        _spec(FieldName.CHANNEL_INFO, Kind.RECORD, "channel information"),
        _spec(FieldName.CONFIGURATION, Kind.RECORD, "device configuration"),
        _spec(FieldName.IP_ADDRESS, Kind.TEXT, "device IP address"),
        _spec(FieldName.DEVICE_NAME, Kind.TEXT, "user-given device name"),
        _spec(FieldName.TIME_ZONE, Kind.TEXT, "device time zone"),
        _spec(FieldName.DST_STATUS, Kind.FLAG, "daylight saving time on/off"),
        _spec(FieldName.WIFI_INFO, Kind.RECORD, "Wi-Fi information"),
        _spec(FieldName.COUNTRY, Kind.TEXT, "country (derived from IP)"),
        _spec(FieldName.LOCATION, Kind.TEXT, "location (derived from IP)"),
        _spec(FieldName.REGISTRATION_DATE, Kind.TEXT, "date the device was registered"),
        _spec(FieldName.DEVICE_UNIQUE_ID, Kind.TEXT, "device unique identifier"),
        _spec(FieldName.ALARM_EVENT, Kind.RECORD, "an alarm: its type and time"),
        _spec(FieldName.PUSH_NOTICE_ID, Kind.TEXT, "push notice id"),
        _spec(FieldName.ALARM_SNAPSHOT, Kind.JPEG, "alarm snapshot (plates anonymised)"),
        _spec(FieldName.EVENT_CLIP, Kind.CLIP, "event clip (video record)"),
        _spec(
            FieldName.AUDIO_TRACK, Kind.RECORD, "the clip's audio track (sound from the microphone)"
        ),
        _spec(FieldName.AI_HUMAN, Kind.RECORD, "AI detection: human shape"),
        _spec(FieldName.AI_VEHICLE, Kind.RECORD, "AI detection: motor vehicle"),
        _spec(FieldName.AI_PET, Kind.RECORD, "AI detection: pet"),
        _spec(FieldName.PLATE_NUMBER, Kind.TEXT, "licence plate number read by the AI engine"),
        _spec(FieldName.NETWORK_TYPE, Kind.TEXT, "network access method and type"),
        _spec(FieldName.OPERATION_LOG, Kind.LIST, "operation log"),
        _spec(FieldName.NETWORK_LOG, Kind.LIST, "network log"),
        _spec(FieldName.ERROR_DATA, Kind.LIST, "error or abnormal service data"),
        _spec(FieldName.SYSTEM_STATUS, Kind.RECORD, "system operating status"),
        _spec(FieldName.PERFORMANCE_DATA, Kind.RECORD, "performance data"),
        _spec(FieldName.DEVICE_LOG, Kind.TEXT, "device log line"),
        _spec(FieldName.POLICY_VERSION, Kind.TEXT, "accepted policy version", personal=False),
        _spec(FieldName.ENABLED_PURPOSES, Kind.LIST, "purposes enabled now", personal=False),
        _spec(FieldName.AGENT_VERSION, Kind.TEXT, "agent software version", personal=False),
        _spec(FieldName.SESSION_COUNTER, Kind.NUMBER, "connection session counter", personal=False),
        _spec(
            FieldName.DECLARATION, Kind.RECORD, "what the device may send, and how", personal=False
        ),
        _spec(FieldName.DROP_COUNTERS, Kind.RECORD, "items dropped, by reason", personal=False),
        _spec(
            FieldName.COMMAND_RESULT, Kind.RECORD, "result of an inbound command", personal=False
        ),
        _spec(FieldName.AGENT_STATUS, Kind.RECORD, "agent status on request", personal=False),
        _spec(
            FieldName.AUDIT_CHECKPOINT,
            Kind.RECORD,
            "the audit trail's head, signed by the device",
            personal=False,
        ),
    )
}

AGENT_FIELDS = frozenset(name for name, spec in CATALOGUE.items() if not spec.personal)


def field_of(name: object) -> FieldName | None:
    """The catalogue field named ``name``, or None for anything unknown."""
    if isinstance(name, FieldName):
        return name
    if isinstance(name, str):
        try:
            return FieldName(name)
        except ValueError:
            return None
    return None


def has_kind(spec: FieldSpec, value: object) -> bool:
    """Does ``value`` have the catalogue type of ``spec``? (a mistyped value is removed)."""
    kind = spec.kind
    if kind is Kind.TEXT:
        return isinstance(value, str)
    if kind is Kind.NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is Kind.FLAG:
        return isinstance(value, bool)
    if kind is Kind.RECORD:
        return isinstance(value, dict)
    if kind is Kind.LIST:
        return isinstance(value, list | tuple)
    return isinstance(value, bytes)  # JPEG and CLIP
