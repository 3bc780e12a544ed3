"""Pure: the agent's config, parsed from TOML text into frozen dataclasses.

Every problem is collected with its path (``broker.port: expected an integer 1..65535,
got "x"``) and raised together as one ``ConfigError``; nothing here reads files or the
environment (``__main__`` reads the file). Unknown keys are errors: a typo in a privacy
setting must not silently fall back to a default.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from edge.errors import ConfigError, ConfigIssue
from edge.session import Endpoint, ProtocolChoice
from edge.topics import DEFAULT_PREFIX, SERIAL_PATTERN


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    serial: str = field(metadata={"doc": "device serial = certificate CN = MQTT client id"})
    model: str = "DB-1"
    firmware_version: str = "0.0.0"
    mac_address: str = "02:00:00:00:00:01"
    device_name: str = "Front door"
    time_zone: str = "UTC"
    state_dir: Path = field(
        default=Path("state"),
        metadata={"doc": "outbox, consent, audit trail, session counter live here (0700)"},
    )
    status_every_s: float = field(
        default=60.0,
        metadata={"doc": "the row-6 status report: at start, then this often (the daemon)"},
    )


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    version: str = field(metadata={"doc": "the policy version the user accepted"})
    app_public_key: Path | None = field(
        default=None,
        metadata={"doc": "Ed25519 public key (PEM) of the user's app, provisioned at enrolment"},
    )
    receipt_max_age_s: int = 24 * 3600


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    endpoints: tuple[Endpoint, ...]
    topic_prefix: str = DEFAULT_PREFIX
    keepalive_s: int = 30
    max_inflight: int = 100
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    protocol: ProtocolChoice = ProtocolChoice.AUTO


@dataclass(frozen=True, slots=True)
class TlsConfig:
    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    max_queue_bytes: int = 64 * 1024 * 1024
    key_file: Path | None = None  # default: <state_dir>/outbox.key


@dataclass(frozen=True, slots=True)
class MediaConfig:
    source: str = "sim"  # "sim", a V4L2 index ("0"), an RTSP URL or a video file
    snapshot_quality: int = 80
    snapshot_max_side_px: int = 1280
    clip_seconds: float = 3.0
    clip_fps: int = 10
    anonymiser_budget_ms: int = 250


@dataclass(frozen=True, slots=True)
class AuditConfig:
    """The audit trail: rotated into segments of ``segment_bytes``; over ``max_bytes`` in
    all, the oldest segment goes once every record in it is older than ``keep_days`` and
    than the accepted version's longest retention."""

    segment_bytes: int = 1024 * 1024
    max_bytes: int = 32 * 1024 * 1024
    keep_days: int = 30
    # Forward-secure seals (edge/seal.py): a new epoch key this often.
    seal_every_records: int = 1000
    seal_every_s: float = 3600.0
    # Signed checkpoints of the trail's head, published on audit/checkpoint.
    checkpoint_every_records: int = 500
    checkpoint_every_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class AudioConfig:
    enabled: bool | None = None  # None: the version's default (on where row 15 discloses audio)


@dataclass(frozen=True, slots=True)
class AgentConfig:
    device: DeviceConfig
    policy: PolicyConfig
    broker: BrokerConfig
    tls: TlsConfig
    outbox: OutboxConfig = OutboxConfig()
    media: MediaConfig = MediaConfig()
    audio: AudioConfig = AudioConfig()
    audit: AuditConfig = AuditConfig()

    @property
    def outbox_key_file(self) -> Path:
        return self.outbox.key_file or self.device.state_dir / "outbox.key"


_HERE = PurePath(".")


class _Reader:
    """Reads typed values from one TOML table, collecting issues with their paths."""

    def __init__(self, table: Mapping[str, Any], path: str, issues: list[ConfigIssue]) -> None:
        self.table = table
        self.path = path
        self.issues = issues
        self.used: set[str] = set()

    def _where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _bad(self, key: str, expected: str, value: object) -> None:
        self.issues.append(ConfigIssue(self._where(key), f"expected {expected}, got {value!r}"))

    def get(self, key: str) -> object:
        self.used.add(key)
        return self.table.get(key)

    def string(self, key: str, default: str | None = None, required: bool = False) -> str:
        value = self.get(key)
        if value is None:
            if required:
                self.issues.append(ConfigIssue(self._where(key), "required, missing"))
            return default or ""
        if not isinstance(value, str) or not value:
            self._bad(key, "a non-empty string", value)
            return default or ""
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self._bad(key, f"an integer {low}..{high}", value)
            return default
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self.get(key)
        if value is None:
            return default
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            self._bad(key, f"a number {low}..{high}", value)
            return default
        return float(value)

    def boolean(self, key: str, default: bool | None) -> bool | None:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self._bad(key, "true or false", value)
            return default
        return value

    def path_value(self, key: str, base: PurePath, required: bool = False) -> Path | None:
        text = self.string(key, required=required)
        if not text:
            return None
        path = Path(text)
        return path if path.is_absolute() else Path(base) / path

    def table_of(self, key: str) -> _Reader:
        value = self.get(key)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self._bad(key, "a table", value)
            value = {}
        return _Reader(value, self._where(key), self.issues)

    def check_unknown(self, known: set[str] | None = None) -> None:
        for key in sorted(set(self.table) - (known or self.used)):
            self.issues.append(ConfigIssue(self._where(key), "unknown key"))


def _protocol_choice(text: str, issues: list[ConfigIssue]) -> ProtocolChoice:
    try:
        return ProtocolChoice(text)
    except ValueError:
        choices = ", ".join(f'"{c.value}"' for c in ProtocolChoice)
        issues.append(ConfigIssue("broker.protocol", f"expected one of {choices}, got {text!r}"))
        return ProtocolChoice.AUTO


def _endpoint(text: object, where: str, issues: list[ConfigIssue]) -> Endpoint | None:
    if not isinstance(text, str) or ":" not in text:
        issues.append(ConfigIssue(where, f'expected "HOST:PORT", got {text!r}'))
        return None
    host, _, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not host:
        issues.append(ConfigIssue(where, f'expected "HOST:PORT" with a host, got {text!r}'))
        return None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        issues.append(ConfigIssue(where, f"expected a port 1..65535, got {port_text!r}"))
        return None
    return Endpoint(host, int(port_text))


def parse_config(text: str, base_dir: PurePath = _HERE) -> AgentConfig:
    """Parse and validate a config file's text.

    Args:
        text: TOML text.
        base_dir: relative paths in the file are relative to this (the file's folder).

    Raises:
        ConfigError: listing every problem found, each with its path.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError([ConfigIssue("", f"not valid TOML: {err}")]) from err
    issues: list[ConfigIssue] = []
    root = _Reader(data, "", issues)

    dev = root.table_of("device")
    serial = dev.string("serial", required=True)
    if serial and not SERIAL_PATTERN.match(serial):
        issues.append(ConfigIssue("device.serial", f"expected 3-32 of A-Z 0-9 _ -, got {serial!r}"))
    device = DeviceConfig(
        serial=serial,
        model=dev.string("model", "DB-1"),
        firmware_version=dev.string("firmware_version", "0.0.0"),
        mac_address=dev.string("mac_address", "02:00:00:00:00:01"),
        device_name=dev.string("device_name", "Front door"),
        time_zone=dev.string("time_zone", "UTC"),
        state_dir=dev.path_value("state_dir", base_dir) or Path(base_dir) / "state",
        status_every_s=dev.number("status_every_s", 60.0, 1.0, 86_400.0),
    )
    dev.check_unknown()

    pol = root.table_of("policy")
    policy = PolicyConfig(
        version=pol.string("version", required=True),
        app_public_key=pol.path_value("app_public_key", base_dir),
        receipt_max_age_s=pol.integer("receipt_max_age_s", 24 * 3600, 60, 365 * 24 * 3600),
    )
    pol.check_unknown()

    brk = root.table_of("broker")
    endpoints: list[Endpoint] = []
    raw_endpoints = brk.get("endpoints")
    if raw_endpoints is None:
        host = brk.string("host", "127.0.0.1")
        port = brk.integer("port", 8883, 1, 65535)
        endpoints.append(Endpoint(host, port))
    elif not isinstance(raw_endpoints, list) or not raw_endpoints:
        issues.append(ConfigIssue("broker.endpoints", 'expected a non-empty list of "HOST:PORT"'))
    else:
        for i, item in enumerate(raw_endpoints):
            found = _endpoint(item, f"broker.endpoints[{i}]", issues)
            if found is not None:
                endpoints.append(found)
    prefix = brk.string("topic_prefix", DEFAULT_PREFIX)
    if any(c in prefix for c in "#+/"):
        issues.append(
            ConfigIssue("broker.topic_prefix", f"expected one topic level, got {prefix!r}")
        )
    broker = BrokerConfig(
        endpoints=tuple(endpoints),
        topic_prefix=prefix,
        keepalive_s=brk.integer("keepalive_s", 30, 2, 3600),
        max_inflight=brk.integer("max_inflight", 100, 1, 65535),
        backoff_base_s=brk.number("backoff_base_s", 0.5, 0.01, 60.0),
        backoff_max_s=brk.number("backoff_max_s", 30.0, 0.1, 3600.0),
        protocol=_protocol_choice(brk.string("protocol", "auto"), issues),
    )
    brk.check_unknown()

    tls_reader = root.table_of("tls")
    tls = TlsConfig(
        ca=tls_reader.path_value("ca", base_dir, required=True) or Path(),
        cert=tls_reader.path_value("cert", base_dir, required=True) or Path(),
        key=tls_reader.path_value("key", base_dir, required=True) or Path(),
    )
    tls_reader.check_unknown()

    box = root.table_of("outbox")
    outbox = OutboxConfig(
        max_queue_bytes=box.integer("max_queue_bytes", 64 * 1024 * 1024, 64 * 1024, 1 << 40),
        key_file=box.path_value("key_file", base_dir),
    )
    box.check_unknown()

    med = root.table_of("media")
    media = MediaConfig(
        source=med.string("source", "sim"),
        snapshot_quality=med.integer("snapshot_quality", 80, 1, 100),
        snapshot_max_side_px=med.integer("snapshot_max_side_px", 1280, 64, 8192),
        clip_seconds=med.number("clip_seconds", 3.0, 0.5, 60.0),
        clip_fps=med.integer("clip_fps", 10, 1, 60),
        anonymiser_budget_ms=med.integer("anonymiser_budget_ms", 250, 5, 10_000),
    )
    med.check_unknown()

    aud = root.table_of("audio")
    audio = AudioConfig(enabled=aud.boolean("enabled", None))
    aud.check_unknown()

    aut = root.table_of("audit")
    audit = AuditConfig(
        segment_bytes=aut.integer("segment_bytes", 1024 * 1024, 16 * 1024, 1 << 30),
        max_bytes=aut.integer("max_bytes", 32 * 1024 * 1024, 64 * 1024, 1 << 40),
        keep_days=aut.integer("keep_days", 30, 1, 3650),
        seal_every_records=aut.integer("seal_every_records", 1000, 1, 1_000_000),
        seal_every_s=aut.number("seal_every_s", 3600.0, 1.0, 30 * 86400.0),
        checkpoint_every_records=aut.integer("checkpoint_every_records", 500, 1, 1_000_000),
        checkpoint_every_s=aut.number("checkpoint_every_s", 3600.0, 1.0, 30 * 86400.0),
    )
    aut.check_unknown()
    if audit.max_bytes < 2 * audit.segment_bytes:
        issues.append(ConfigIssue("audit.max_bytes", "expected at least 2 x audit.segment_bytes"))

    root.check_unknown({"device", "policy", "broker", "tls", "outbox", "media", "audio", "audit"})
    if issues:
        raise ConfigError(issues)
    return AgentConfig(device, policy, broker, tls, outbox, media, audio, audit)
