"""Config parsing: every problem reported with its path, nothing silently defaulted."""

from __future__ import annotations

from pathlib import Path, PurePath

import pytest

from edge.config import parse_config
from edge.errors import ConfigError
from edge.session import Endpoint, ProtocolChoice

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
[device]
serial = "SN0001"
[policy]
version = "en-2023-01-10"
[broker]
host = "127.0.0.1"
port = 8883
[tls]
ca = "ca.pem"
cert = "dev.pem"
key = "dev.key"
"""


def _issues(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return [str(issue) for issue in info.value.issues]


def test_example_config_parses() -> None:
    path = ROOT / "examples" / "agent.toml"
    config = parse_config(path.read_text(), base_dir=path.parent)
    assert config.device.serial == "SN0001"
    assert config.policy.version == "en-2023-01-10"
    assert config.broker.endpoints == (Endpoint("127.0.0.1", 8883),)
    assert config.audio.enabled is True
    assert config.tls.key == path.parent / "../run/pki/devices/SN0001.key"


def test_parse_config_minimal_uses_defaults_and_resolves_paths() -> None:
    config = parse_config(MINIMAL, base_dir=PurePath("/etc/edge"))
    assert config.tls.ca == Path("/etc/edge/ca.pem")
    assert config.outbox_key_file == Path("/etc/edge/state/outbox.key")
    assert config.audio.enabled is None
    assert config.broker.max_inflight == 100


def test_parse_config_reports_bad_port_with_path() -> None:
    issues = _issues(MINIMAL.replace("port = 8883", 'port = "x"'))
    assert issues == ["broker.port: expected an integer 1..65535, got 'x'"]


def test_parse_config_collects_every_problem() -> None:
    text = (
        MINIMAL.replace('serial = "SN0001"', 'serial = "bad serial"')
        .replace("port = 8883", "port = 70000\nkeepalive = 3")
        .replace('key = "dev.key"', "")
    )
    issues = _issues(text)
    assert any(i.startswith("device.serial: expected") for i in issues)
    assert "broker.port: expected an integer 1..65535, got 70000" in issues
    assert "broker.keepalive: unknown key" in issues
    assert "tls.key: required, missing" in issues


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ('endpoints = ["a:1", "b"]', "broker.endpoints[1]: expected \"HOST:PORT\", got 'b'"),
        ('endpoints = ["a:0"]', "broker.endpoints[0]: expected a port 1..65535, got '0'"),
        ("endpoints = []", 'broker.endpoints: expected a non-empty list of "HOST:PORT"'),
    ],
)
def test_parse_config_checks_each_endpoint(snippet: str, expected: str) -> None:
    text = MINIMAL.replace('host = "127.0.0.1"\nport = 8883', snippet)
    assert _issues(text) == [expected]


def test_parse_config_broker_protocol_is_a_known_choice() -> None:
    text = MINIMAL.replace("port = 8883", 'port = 8883\nprotocol = "3.1.1"')
    assert parse_config(text).broker.protocol is ProtocolChoice.MQTT311
    assert parse_config(MINIMAL).broker.protocol is ProtocolChoice.AUTO
    assert _issues(MINIMAL.replace("port = 8883", 'port = 8883\nprotocol = "4"')) == [
        'broker.protocol: expected one of "auto", "5", "3.1.1", got \'4\''
    ]


def test_parse_config_refuses_unknown_tables_and_bad_toml() -> None:
    assert "telemetry: unknown key" in _issues(MINIMAL + "\n[telemetry]\nx = 1\n")
    assert _issues("[device\n")[0].startswith("not valid TOML")


def test_parse_config_audio_must_be_boolean() -> None:
    assert _issues(MINIMAL + '\n[audio]\nenabled = "off"\n') == [
        "audio.enabled: expected true or false, got 'off'"
    ]
