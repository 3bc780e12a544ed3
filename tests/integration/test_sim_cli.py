"""The simulator's command line as QA runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from certs.pki import Pki
from firmware_sim.broker import MosquittoBroker

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


def _sim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "firmware_sim", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=110,
        check=False,
    )


def test_sim_list_names_every_scenario() -> None:
    result = _sim("list")
    assert result.returncode == 0
    for name in ("normal_day", "offline_hour", "consent_withdrawn_mid_queue", "policy_switch"):
        assert name in result.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ("run", "--scenario", "tuesday", "--policy", "en-2020-01-19"),
            "unknown scenario 'tuesday'",
        ),
        (("run", "--scenario", "normal_day", "--policy", "xx"), "unknown policy version 'xx'"),
        (
            ("run", "--scenario", "normal_day", "--policy", "en-2020-01-19", "--backend-cert", "b"),
            "go with --broker",
        ),
        (
            (
                "run",
                "--scenario",
                "normal_day",
                "--policy",
                "en-2023-01-10",
                "--consent",
                "marketing",
            ),
            "unknown purpose",
        ),
        (
            (
                "run",
                "--scenario",
                "normal_day",
                "--policy",
                "en-2023-01-10",
                "--images",
                "/nonexistent",
            ),
            "not a folder",
        ),
    ],
)
def test_sim_bad_options_give_one_line_and_exit_2(args: tuple[str, ...], fragment: str) -> None:
    result = _sim(*args)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_sim_run_starts_its_own_broker_and_passes_the_leak_audit() -> None:
    result = _sim(
        "run",
        "--scenario",
        "normal_day",
        "--policy",
        "en-2023-01-10",
        "--consent",
        "device_ai",
        "--speed",
        "60",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 finding(s)" in result.stdout


def test_sim_run_against_a_given_broker(shared_broker: MosquittoBroker, pki: Pki) -> None:
    ident = pki.devices["SN0003"]
    result = _sim(
        "run",
        "--scenario",
        "normal_day",
        "--policy",
        "en-2020-01-19",
        "--serial",
        "SN0003",
        "--broker",
        f"{shared_broker.host}:{shared_broker.port}",
        "--ca",
        str(pki.ca_cert),
        "--cert",
        str(ident.cert),
        "--key",
        str(ident.key),
        "--speed",
        "60",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "drained=True" in result.stdout


def _given_broker_args(broker: MosquittoBroker, pki: Pki, serial: str) -> list[str]:
    ident = pki.devices[serial]
    return [
        "--serial",
        serial,
        "--broker",
        f"{broker.host}:{broker.port}",
        "--ca",
        str(pki.ca_cert),
        "--cert",
        str(ident.cert),
        "--key",
        str(ident.key),
    ]


def test_sim_run_refuses_app_steps_without_a_backend_identity(
    shared_broker: MosquittoBroker, pki: Pki
) -> None:
    """The bug: without an observer identity the app's commands were skipped quietly, so
    ``policy_switch`` 'passed' without ever switching."""
    result = _sim(
        "run",
        "--scenario",
        "policy_switch",
        "--policy",
        "en-2020-01-19",
        *_given_broker_args(shared_broker, pki, "SN0003"),
        "--speed",
        "60",
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "needs the user's app" in result.stderr
    assert "--backend-cert" in result.stderr
    assert "Traceback" not in result.stderr


def test_sim_run_plays_the_app_steps_with_a_backend_identity(
    shared_broker: MosquittoBroker, pki: Pki
) -> None:
    backend = pki.observers["observer"]
    result = _sim(
        "run",
        "--scenario",
        "policy_switch",
        "--policy",
        "en-2020-01-19",
        *_given_broker_args(shared_broker, pki, "SN0003"),
        "--backend-cert",
        str(backend.cert),
        "--backend-key",
        str(backend.key),
        "--speed",
        "60",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 finding(s)" in result.stdout
    assert "app: 5/5 command(s) answered" in result.stdout
