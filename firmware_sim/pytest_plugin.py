"""Shell: the ``firmware_sim`` pytest plugin (entry point ``pytest11``), for a backend
team's MQTT integration tests. Guide: docs/testing-with-simulated-devices.md.

Fixtures:
    sim_broker  (session) the ``BrokerTarget``: the broker given by the ``--sim-*``
                options (or ``SIM_*`` environment variables), else a local mutual-TLS
                Mosquitto with throwaway certificates
    sim_fleet   a ``SimFleet`` on it: ``sim_fleet.start(count=50, policy=..., consents=...)``;
                every device is stopped after the test, and a message that broke
                docs/asyncapi.yaml fails it
    sim_device  one started device (policy en-2023-01-10, no consent), from ``sim_fleet``
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_sim.broker import find_mosquitto
from firmware_sim.errors import SimError
from firmware_sim.testing import (
    BrokerTarget,
    SimFleet,
    SimulatedDevice,
    broker_from_files,
    local_broker,
)

OPTIONS = (
    ("broker", "HOST:PORT of your broker (mutual TLS); without it a local Mosquitto"),
    ("ca", "the CA that signed your broker's certificate"),
    ("backend-cert", "a client certificate that may read devices/# and write devices/+/cmd"),
    ("backend-key", "its private key"),
    ("device-certs", "a folder of <serial>.pem and <serial>.key, one pair per device"),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("firmware_sim", "simulated devices (firmware_sim plugin)")
    for name, text in OPTIONS:
        env = "SIM_" + name.upper().replace("-", "_")
        group.addoption(f"--sim-{name}", default=os.environ.get(env), help=f"{text} (${env})")


@pytest.fixture(scope="session")
def sim_broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerTarget]:
    """Your broker, or a local one for this test session."""
    given = {name: request.config.getoption(f"--sim-{name}") for name, _ in OPTIONS}
    if given["broker"]:
        missing = [f"--sim-{name}" for name, value in given.items() if not value]
        if missing:
            pytest.fail(f"--sim-broker also needs {', '.join(missing)}", pytrace=False)
        try:
            target = broker_from_files(
                given["broker"],
                Path(given["ca"]),
                Path(given["backend-cert"]),
                Path(given["backend-key"]),
                Path(given["device-certs"]),
            )
        except SimError as err:
            pytest.fail(str(err), pytrace=False)
        yield target
        return
    if find_mosquitto() is None:
        pytest.fail(
            "no --sim-broker given and mosquitto is not installed "
            "(Debian: apt-get install mosquitto)",
            pytrace=False,
        )
    with local_broker(tmp_path_factory.mktemp("sim-broker")) as target:
        yield target


@pytest.fixture
def sim_fleet(sim_broker: BrokerTarget, tmp_path: Path) -> Iterator[SimFleet]:
    fleet = SimFleet(sim_broker, tmp_path / "sim-devices")
    try:
        yield fleet
    finally:
        fleet.close()


@pytest.fixture
def sim_device(sim_fleet: SimFleet) -> SimulatedDevice:
    return sim_fleet.start(1)[0]
