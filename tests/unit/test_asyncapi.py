"""docs/asyncapi.yaml is checked by the official AsyncAPI parser (tools/asyncapi), and
its schemas refuse what the agent must never send."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from firmware_sim.contract import ContractError, default_contract
from tests.conftest import running_under_ci

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "asyncapi"


def test_the_asyncapi_parser_reports_no_error() -> None:
    node = shutil.which("node")
    if node is None or not (TOOL / "node_modules" / "@asyncapi" / "parser").is_dir():
        message = "node or tools/asyncapi/node_modules missing (scripts/setup.sh installs them)"
        if running_under_ci():
            pytest.fail(message + "; under CI=true this is a failure, not a skip")
        pytest.skip(message)
    result = subprocess.run(
        [node, str(TOOL / "validate.mjs"), str(ROOT / "docs" / "asyncapi.yaml")],
        capture_output=True, text=True, timeout=60, check=False, env=dict(os.environ),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: 14 channels" in result.stdout


ENVELOPE = (
    b'{"v":1,"record_id":"r1","created_at":"2026-11-23T12:00:00+00:00",'
    b'"policy_version":"en-2023-01-10","purpose":"notification","data":%s}'
)


def test_binary_fields_need_their_media_type() -> None:
    contract = default_contract()
    good = ENVELOPE % b'{"alarm_snapshot":{"b64":"/9j/","type":"image/jpeg"}}'
    contract.check("devices/SN0001/alarm/snapshot", good)
    with pytest.raises(ContractError):
        contract.check("devices/SN0001/alarm/snapshot", ENVELOPE % b'{"x":{"b64":"/9j/"}}')


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("devices/SN0001/nonsense", b"{}"),
        ("devices/SN0001/availability", b'{"state":"off","session":1}'),
        ("devices/SN0001/telemetry", b'{"v":2,"record_id":"r"}'),
        ("devices/SN0001/alarm/event", b"not json"),
    ],
)
def test_the_contract_refuses(topic: str, payload: bytes) -> None:
    with pytest.raises(ContractError):
        default_contract().check(topic, payload)


def test_an_empty_retained_message_clears_diagnostics() -> None:
    default_contract().check("devices/SN0001/diagnostics", b"")
